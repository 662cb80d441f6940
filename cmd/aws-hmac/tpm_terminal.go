package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// stdinTerminal reads a line from standard input with echo off, and only
// when standard input is a terminal: a secret from a pipe came from a file,
// an argument or the environment, where it stays.
func stdinTerminal(prompt string, stderr io.Writer) (string, error) {
	return readTerminal(os.Stdin, prompt, stderr)
}

func readTerminal(in *os.File, prompt string, stderr io.Writer) (string, error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errors.New("the secret is read from a terminal only: run this command with standard input on a terminal")
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ECHONL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("turning echo off: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReaderSize(in, 256).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no secret read from the terminal")
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("an empty secret")
	}
	return line, nil
}
