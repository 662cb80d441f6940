package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// demoEnv is the environment `make demo` gives scripts/demo.sh when the
// pinned binaries are named: no AWS key (MinIO stands in), no terminal.
func demoEnv(t *testing.T, minio string) []string {
	t.Helper()
	bins := map[string]string{"VAULT_BIN": "", "MINIO_BIN": "", "MC_BIN": ""}
	for name := range bins {
		p := os.Getenv(name)
		if _, err := os.Stat(p); p == "" || err != nil {
			if testenv.InCI() {
				t.Fatalf("%s is not set to a binary (CI=true): source scripts/env.sh after make tools", name)
			}
			t.Skipf("%s is not set to a binary: source scripts/env.sh after make tools", name)
		}
		bins[name] = p
	}
	if minio != "" {
		bins["MINIO_BIN"] = minio
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TERM=xterm-256color"}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOTOOLCHAIN", "GOPROXY", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range bins {
		env = append(env, k+"="+v)
	}
	return env
}

func demoScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDemo runs the demo as `make demo` does with the pinned binaries named,
// its output in a pipe: it succeeds, prints no escape code, and shows Vault's
// whole refusal.
func TestDemo(t *testing.T) {
	env := demoEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoScript(t))
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if i := bytes.IndexByte(out.Bytes(), 0x1b); i >= 0 {
		t.Errorf("escape code at byte %d of output to a pipe: %q", i, text[max(0, i-20):min(len(text), i+20)])
	}
	for _, want := range []string{
		"Enabled the vault-plugin-aws-hmac secrets engine version v",
		"<Name>demo-bucket</Name>",
		"MinIO answered HTTP 200",
		// The refusal whole: status, path and the reason's last words.
		"Code: 403. Errors:",
		"URL: PUT http://127.0.0.1:",
		"service: the role may not sign for this service (allowed_services: s3)",
		"== Done",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, text)
		}
	}
}

// TestDemoInterrupt: SIGINT while the demo waits for a MinIO that never
// answers (stopped before it starts, as a hung server would be) ends the
// demo and every process it started (Vault, its plugin, MinIO) within 15 s.
func TestDemoInterrupt(t *testing.T) {
	realMinIO := os.Getenv("MINIO_BIN")
	wrapper := filepath.Join(t.TempDir(), "minio")
	script := "#!/bin/sh\nkill -STOP $$\nexec " + strconv.Quote(realMinIO) + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, lines := startDemo(t, demoEnv(t, wrapper))
	var seen []string
	awaitLine(t, lines, &seen, "waiting for minio", 3*time.Minute)
	started := awaitServers(t, cmd.Process.Pid, "vault", "minio")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("the interrupted demo exited 0")
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the demo was still running 15 s after SIGINT\n%s", strings.Join(seen, "\n"))
	}
	drain(lines, &seen)
	for _, l := range seen {
		if strings.HasPrefix(l, "MinIO at ") {
			t.Fatalf("the demo got past the wait for MinIO: %q", l)
		}
	}
	awaitGone(t, started, 15*time.Second)
}

// startDemo starts the demo in a process group of its own, its output
// (stdout and stderr, one pipe) sent line by line to the channel.
func startDemo(t *testing.T, env []string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(demoScript(t))
	cmd.Env = env
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	// Whatever happens, nothing of the demo outlives the test.
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGCONT); _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		scan := bufio.NewScanner(stdout)
		for scan.Scan() {
			lines <- scan.Text()
		}
	}()
	return cmd, lines
}

// awaitServers waits until processes with each name run under pid (a
// child forked a moment ago may not have run its program yet) and returns
// every process under pid.
func awaitServers(t *testing.T, pid int, names ...string) []proc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		started := descendants(pid)
		found := 0
		for _, name := range names {
			if slices.ContainsFunc(started, func(p proc) bool { return p.comm == name }) {
				found++
			}
		}
		if found == len(names) {
			return started
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %v under the demo: %v", names, started)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitGone fails the test if any of the processes still runs after limit.
func awaitGone(t *testing.T, procs []proc, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, p := range procs {
		for p.alive() {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) still running %s after SIGINT", p.comm, p.pid, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func awaitLine(t *testing.T, lines <-chan string, seen *[]string, want string, limit time.Duration) {
	t.Helper()
	timeout := time.After(limit)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before %q:\n%s", want, strings.Join(*seen, "\n"))
			}
			*seen = append(*seen, l)
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q in %s:\n%s", want, limit, strings.Join(*seen, "\n"))
		}
	}
}

// drain collects what the demo printed before it ended, for a while.
func drain(lines <-chan string, seen *[]string) {
	timeout := time.After(2 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return
			}
			*seen = append(*seen, l)
		case <-timeout:
			return
		}
	}
}

// proc names a process by pid, command and start time, so a reused pid is
// not taken for it.
type proc struct {
	pid   int
	comm  string
	start string
}

// stat reads a process's parent, command and start time from /proc.
func stat(pid int) (ppid int, comm, start, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", "", "", false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, "", "", "", false
	}
	f := strings.Fields(s[end+1:]) // state, ppid, ... starttime is field 22 of the line
	if len(f) < 20 {
		return 0, "", "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, s[open+1 : end], f[19], f[0], true
}

// alive: the same process still exists and is not a zombie.
func (p proc) alive() bool {
	_, comm, start, state, ok := stat(p.pid)
	return ok && comm == p.comm && start == p.start && state != "Z"
}

// descendants lists every process under pid, children first.
func descendants(root int) []proc {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, comm, start, state, ok := stat(pid); ok && state != "Z" {
			children[ppid] = append(children[ppid], proc{pid, comm, start})
		}
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}
