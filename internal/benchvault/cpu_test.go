package benchvault

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuMeter reads the CPU time Vault, the plugin processes and this test
// process (the load generator) have used, so a rate can be split by process.
type cpuMeter struct {
	vaultPID  string
	pluginPID string
}

// cpuSample is CPU time used so far, by process.
type cpuSample struct{ vault, plugin, client time.Duration }

func (s cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{s.vault - o.vault, s.plugin - o.plugin, s.client - o.client}
}

func (s cpuSample) add(o cpuSample) cpuSample {
	return cpuSample{s.vault + o.vault, s.plugin + o.plugin, s.client + o.client}
}

// perRequest is the sample in µs per request, Vault / plugin / load generator.
func (s cpuSample) perRequest(n int64) string {
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
	return fmt.Sprintf("%6.0f / %4.0f / %4.0f", us(s.vault), us(s.plugin), us(s.client))
}

// newCPUMeter finds Vault by its plugin directory and the plugin by its
// binary in it (one process serves all its mounts).
func newCPUMeter(pluginDir, plugin string) *cpuMeter {
	m := &cpuMeter{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		switch {
		case bytes.Contains(cmdline, []byte("-dev-plugin-dir="+pluginDir)):
			m.vaultPID = e.Name()
		case string(args[0]) == filepath.Join(pluginDir, plugin):
			m.pluginPID = e.Name()
		}
	}
	return m
}

func (m *cpuMeter) sample() cpuSample {
	var s cpuSample
	s.vault, s.plugin = procCPU(m.vaultPID), procCPU(m.pluginPID)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return s
}

// procCPU is a process's user and system time; 0 when it is gone.
func procCPU(pid string) time.Duration {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}
