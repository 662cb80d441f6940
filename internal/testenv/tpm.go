package testenv

import (
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
)

// SWTPM is swtpm in socket mode, reached over TCP.
type SWTPM struct {
	Addr     string // data port, for raw TPM commands
	CtrlAddr string
	StateDir string
	Process  *Process

	t        testing.TB
	bin      string
	dir      string
	port     int
	ctrlPort int
}

// StartSWTPM starts a fresh software TPM (Debian package swtpm).
func StartSWTPM(t testing.TB) *SWTPM {
	t.Helper()
	s := newSWTPM(t)
	s.Start()
	return s
}

// newSWTPM lays out a software TPM's state directory and ports, not yet
// started.
func newSWTPM(t testing.TB) *SWTPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		unavailable(t, "swtpm (Debian package swtpm)", "deps")
	}
	dir := TempDir(t, "swtpm-")
	// The control port is the data port + 1, where tpm2-tools' swtpm TCTI looks for it.
	port := freePortPair(t)
	s := &SWTPM{t: t, bin: bin, dir: dir, StateDir: filepath.Join(dir, "state"), port: port, ctrlPort: port + 1}
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
	s.CtrlAddr = "127.0.0.1:" + strconv.Itoa(s.ctrlPort)
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

// EKCA is a local CA that signs swtpm's EK certificates (swtpm_localca):
// Root is the PEM file of its root, Intermediate of the issuing CA.
type EKCA struct {
	Root, Intermediate string
	dir                string
}

// NewEKCA makes a directory for a local EK CA; swtpm_localca creates the
// keys on first use. Several swtpm instances may share it.
func NewEKCA(t testing.TB) *EKCA {
	t.Helper()
	if _, err := exec.LookPath("swtpm_setup"); err != nil {
		unavailable(t, "swtpm_setup (Debian package swtpm-tools)", "deps")
	}
	dir := TempDir(t, "ekca-")
	ca := &EKCA{dir: dir, Root: filepath.Join(dir, "swtpm-localca-rootca-cert.pem"), Intermediate: filepath.Join(dir, "issuercert.pem")}
	files := map[string]string{
		"localca.conf":    "statedir = " + dir + "\nsigningkey = " + dir + "/signkey.pem\nissuercert = " + ca.Intermediate + "\ncertserial = " + dir + "/certserial\n",
		"localca.options": "--platform-manufacturer Test\n--platform-version 2.1\n--platform-model Test\n",
		"setup.conf": "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = " + dir + "/localca.conf\n" +
			"create_certs_tool_options = " + dir + "/localca.options\nactive_pcr_banks = sha256\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// StartSWTPMWithEK starts swtpm whose state swtpm_setup manufactured with
// RSA and ECC endorsement keys and their certificates, signed by ca.
func StartSWTPMWithEK(t testing.TB, ca *EKCA) *SWTPM {
	t.Helper()
	s := newSWTPM(t)
	s.manufacture(ca)
	s.Start()
	return s
}

// manufacture makes StateDir a new TPM with EK certificates from ca.
func (s *SWTPM) manufacture(ca *EKCA) {
	s.t.Helper()
	out, err := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", s.StateDir, "--create-ek-cert",
		"--config", filepath.Join(ca.dir, "setup.conf"), "--overwrite").CombinedOutput()
	if err != nil {
		s.t.Fatalf("swtpm_setup --create-ek-cert: %v\n%s", err, out)
	}
}

// Replace swaps in another TPM at the same address, as when a node's
// TPM is replaced: new endorsement keys, certified by ca.
func (s *SWTPM) Replace(ca *EKCA) {
	s.t.Helper()
	s.Kill()
	s.StateDir = filepath.Join(TempDir(s.t, "swtpm-"), "state")
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	s.manufacture(ca)
	s.Start()
}

// Start (re)starts swtpm on the same ports and state directory.
func (s *SWTPM) Start() {
	s.t.Helper()
	s.Process = StartProcess(s.t, "swtpm", filepath.Join(s.dir, "swtpm.log"), nil, s.bin, "socket", "--tpm2",
		"--tpmstate", "dir="+s.StateDir,
		"--server", "type=tcp,port="+strconv.Itoa(s.port)+",bindaddr=127.0.0.1",
		"--ctrl", "type=tcp,port="+strconv.Itoa(s.ctrlPort)+",bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear")
	WaitFor(s.t, "swtpm", 30*time.Second, s.Process, func() error { return dialCheck(s.Addr) })
}

// Kill stops swtpm abruptly, as a crash would; its state stays for Start.
func (s *SWTPM) Kill() { s.Process.Kill() }

// freePortPair returns a port p such that p and p+1 were both free. It
// picks below the kernel's ephemeral range, where outgoing connections
// (module downloads, other tests' clients) never take ports, so a busy
// machine cannot fill every neighbour of the ports it hands out.
func freePortPair(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	for i := 0; i < 500; i++ {
		p := 10000 + rand.IntN(low-10002)
		if bindable(p) && bindable(p+1) {
			return p
		}
	}
	t.Fatal("no two consecutive free ports below the ephemeral range")
	return 0
}

// ephemeralLow is the first port the kernel gives outgoing connections.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				return n
			}
		}
	}
	return 32768
}

func bindable(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// MakeCredential is TPM2_MakeCredential as a verifier runs it, from the EK's
// public area alone: the credential blob and encrypted secret that only the
// TPM holding that EK and an object of that Name can activate.
func MakeCredential(t testing.TB, ekPublic, name, secret []byte) (idObject, encSecret []byte) {
	t.Helper()
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](ekPublic)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := pub.Contents()
	if err != nil {
		t.Fatal(err)
	}
	ek, err := tpm2.ImportEncapsulationKey(contents)
	if err != nil {
		t.Fatal(err)
	}
	idObject, encSecret, err = tpm2.CreateCredential(crand.Reader, ek, name, secret)
	if err != nil {
		t.Fatal(err)
	}
	return idObject, encSecret
}

// EvidenceOf reads a config/attestation answer's TPM evidence (its
// "evidence" map: base64 public areas, hex Names, the endorsement keys)
// back into what tpm.VerifyCertification takes.
func EvidenceOf(t testing.TB, m map[string]any) *tpm.Evidence {
	t.Helper()
	dec := func(what, v string, hexed bool) []byte {
		var b []byte
		var err error
		if hexed {
			b, err = hex.DecodeString(v)
		} else {
			b, err = base64.StdEncoding.DecodeString(v)
		}
		if err != nil {
			t.Fatalf("evidence %s: %v", what, err)
		}
		return b
	}
	field := func(k string, hexed bool) []byte { return dec(k, m[k].(string), hexed) }
	ev := &tpm.Evidence{Public: field("public", false), Name: field("name", true), AKPublic: field("ak_public", false),
		AKName: field("ak_name", true), CertifyInfo: field("certify_info", false), Signature: field("signature", false),
		EKs: map[string]tpm.EK{}}
	for name, v := range m["endorsement_keys"].(map[string]any) {
		ev.EKs[name] = tpm.EK{Public: dec("endorsement key "+name, v.(map[string]any)["public"].(string), false)}
	}
	return ev
}
