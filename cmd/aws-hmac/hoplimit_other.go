//go:build !unix

package main

import (
	"errors"
	"net"
)

// setHopLimit is not available here: IMDS answers keep the system's TTL.
func setHopLimit(*net.TCPConn, int) error { return nil }

func hopLimit(*net.TCPConn) (int, error) { return 0, errors.New("not supported on this platform") }
