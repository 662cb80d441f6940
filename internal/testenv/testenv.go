// Package testenv starts the real components the tests run against — a
// Vault server, a SoftHSM2 token, a TPM (swtpm or the in-process simulator)
// and MinIO — on 127.0.0.1 with random free ports and temporary
// directories, and stops them when the test ends.
//
// Under CI=true a component that cannot start fails the test. Otherwise a
// test whose component is missing is skipped with the make target that
// provides it.
package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// unavailable fails the test under CI and skips it otherwise.
func unavailable(t testing.TB, what, target string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is not available (CI=true, so this is a failure): run `make %s`", what, target)
	}
	t.Skipf("%s is not available: run `make %s` to provide it", what, target)
}

// binary finds a tool from its environment variable (set by scripts/env.sh)
// or on PATH.
func binary(t testing.TB, envVar, name, target string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	unavailable(t, name, target)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls ready until it succeeds, the process exits or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, p *Process, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 500*time.Millisecond) {
		if last = ready(); last == nil {
			return
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s exited before it was ready: %v\n%s", what, p.ExitErr(), p.Tail(60))
		}
		if time.Now().After(deadline) {
			var tail string
			if p != nil {
				tail = p.Tail(60)
			}
			t.Fatalf("%s not ready after %v: %v\n%s", what, timeout, last, tail)
		}
		time.Sleep(delay)
	}
}

// Process is a component running as a child process, its output in a log file.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// StartProcess runs bin with args, output appended to logPath, in its own
// process group; the test's cleanup stops it and, if the test failed, shows
// the end of its log.
func StartProcess(t testing.TB, name, logPath string, env []string, bin string, args ...string) *Process {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- last lines of the %s log (%s) ---\n%s", name, logPath, p.Tail(80))
		}
	})
	return p
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit status once it has ended.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop ends the process group: SIGTERM, then SIGKILL after ten seconds.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill ends the process group at once, as a crash would.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// run runs a short command and fails the test with its output on error.
func run(t testing.TB, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), args[0], err, out) // arguments may carry secrets
	}
	return string(out)
}

// TempDir is t.TempDir, kept short: unix sockets and some tools dislike long paths.
func TempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

var errNotReady = errors.New("not ready")

func dialCheck(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotReady, err)
	}
	return c.Close()
}
