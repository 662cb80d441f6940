package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSM is a SoftHSM2 token in a temporary directory.
type SoftHSM struct {
	ConfPath string // for SOFTHSM2_CONF
	TokenDir string
	Module   string // the PKCS#11 library
	Label    string
	PIN      string
	SOPIN    string
}

// Env is the environment a process needs to see this token.
func (s *SoftHSM) Env() []string { return []string{"SOFTHSM2_CONF=" + s.ConfPath} }

// NewSoftHSM initialises a fresh token labelled label. It sets SOFTHSM2_CONF
// for the test process too, since the PKCS#11 library reads it at load.
func NewSoftHSM(t testing.TB, label string) *SoftHSM {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		unavailable(t, "softhsm2-util (Debian package softhsm2)", "deps")
	}
	module := os.Getenv("SOFTHSM2_MODULE")
	if module == "" {
		for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"} {
			if _, err := os.Stat(m); err == nil {
				module = m
				break
			}
		}
	}
	if module == "" {
		unavailable(t, "libsofthsm2.so (Debian package softhsm2)", "deps")
	}
	dir := TempDir(t, "softhsm-")
	s := &SoftHSM{
		ConfPath: filepath.Join(dir, "softhsm2.conf"),
		TokenDir: filepath.Join(dir, "tokens"),
		Module:   module,
		Label:    label,
		PIN:      "pin-" + randomHex(6),
		SOPIN:    "so-" + randomHex(6),
	}
	if err := os.MkdirAll(s.TokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", s.TokenDir)
	if err := os.WriteFile(s.ConfPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", s.ConfPath)
	run(t, s.Env(), util, "--init-token", "--free", "--label", label, "--so-pin", s.SOPIN, "--pin", s.PIN)
	return s
}
