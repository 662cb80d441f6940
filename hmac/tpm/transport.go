package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// Dial connects to a TPM: a device path such as /dev/tpmrm0, or
// "tcp://host:port" for the data port of swtpm in socket mode.
func Dial(address string) (transport.TPMCloser, error) {
	if addr, ok := strings.CutPrefix(address, "tcp://"); ok {
		return OpenTCP(addr)
	}
	if address == "" {
		address = "/dev/tpmrm0"
	}
	t, err := linuxtpm.Open(address)
	if err != nil {
		return nil, fmt.Errorf("tpm: open %s: %w", address, err)
	}
	return &lockedTPM{tpm: t}, nil
}

// OpenTCP connects to swtpm's raw data port (swtpm socket --server type=tcp).
// go-tpm's transport/tcp speaks the MS simulator's protocol, not swtpm's.
func OpenTCP(addr string) (transport.TPMCloser, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("tpm: connect %s: %w", addr, err)
	}
	return &lockedTPM{tpm: &streamTPM{conn: conn}}, nil
}

// streamTPM sends commands over a byte stream and reads exactly one framed
// response: a 10-byte header whose size field gives the rest.
type streamTPM struct {
	conn net.Conn
}

const maxResponse = 8192

// Response codes that ask the caller to send the command again.
const (
	rcRetry   = 0x922
	rcYielded = 0x908
	rcTesting = 0x90A
)

func (s *streamTPM) Send(cmd []byte) ([]byte, error) {
	delay := time.Millisecond
	for attempt := 0; ; attempt++ {
		rsp, err := s.roundTrip(cmd)
		if err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case rcRetry, rcYielded, rcTesting:
			if attempt < 12 {
				time.Sleep(delay)
				delay = min(2*delay, 500*time.Millisecond)
				continue
			}
		}
		return rsp, nil
	}
}

func (s *streamTPM) roundTrip(cmd []byte) ([]byte, error) {
	_ = s.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, err
	}
	var hdr [10]byte
	if _, err := io.ReadFull(s.conn, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < 10 || size > maxResponse {
		return nil, fmt.Errorf("tpm: response of %d bytes", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr[:])
	if _, err := io.ReadFull(s.conn, rsp[10:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

func (s *streamTPM) Close() error { return s.conn.Close() }

// lockedTPM serialises commands: go-tpm transports are not safe for
// concurrent use, and a TPM without a resource manager runs one at a time.
type lockedTPM struct {
	mu     sync.Mutex
	tpm    transport.TPMCloser
	closed bool
}

var errClosed = errors.New("tpm: connection closed")

func (l *lockedTPM) Send(cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	return l.tpm.Send(cmd)
}

func (l *lockedTPM) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.tpm.Close()
}
