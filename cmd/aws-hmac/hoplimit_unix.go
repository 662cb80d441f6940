//go:build unix

package main

import (
	"net"
	"syscall"
)

// setHopLimit sets the IPv4 TTL, or the IPv6 unicast hop limit, of c.
func setHopLimit(c *net.TCPConn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	v6 := false
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		v6 = a.IP.To4() == nil
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, n)
		} else {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, n)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// hopLimit reads back what setHopLimit set.
func hopLimit(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	v6 := false
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		v6 = a.IP.To4() == nil
	}
	var n int
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			n, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS)
		} else {
			n, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL)
		}
	})
	if err != nil {
		return 0, err
	}
	return n, serr
}
