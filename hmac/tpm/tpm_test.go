package tpm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func swtpmConfig(t *testing.T) (*testenv.SWTPM, tpm.Config) {
	t.Helper()
	sw := testenv.StartSWTPM(t)
	return sw, tpm.Config{Device: "tcp://" + sw.Addr, Password: "key-auth-value"}
}

func importKey(t *testing.T, cfg tpm.Config) *tpm.Key {
	t.Helper()
	k, err := tpm.Import(context.Background(), cfg, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// loadedHandles counts transient objects and sessions left in the TPM.
func loadedHandles(t *testing.T, addr string) int {
	t.Helper()
	conn, err := tpm.Dial("tcp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := 0
	for _, ht := range []tpm2.TPMHT{tpm2.TPMHTTransient, tpm2.TPMHTHMACSession, tpm2.TPMHTPolicySession} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(ht) << 24, PropertyCount: 64}.Execute(conn)
		if err != nil {
			t.Fatal(err)
		}
		handles, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			t.Fatal(err)
		}
		n += len(handles.Handle)
	}
	return n
}

func TestImportOpenAndSign(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k)

	ref := k.Reference()
	if ref.Password != "" {
		t.Fatal("the reference carries the password")
	}
	keytest.NoSecretIn(t, "the TPM key reference", bytes.Join([][]byte{ref.Public, ref.Private, ref.ParentName, []byte(k.KeyIdentity())}, nil))

	// The TPM enforces the attributes in the public area it was created with.
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](ref.Public)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := pub.Contents()
	if err != nil {
		t.Fatal(err)
	}
	if a := contents.ObjectAttributes; !a.FixedTPM || !a.FixedParent || a.SensitiveDataOrigin {
		t.Fatalf("attributes %+v: want fixedTPM and fixedParent", a)
	}

	ref.Password = cfg.Password
	opened, err := tpm.Open(context.Background(), ref, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	keytest.CheckSuite(t, opened)
	k.Close()
	opened.Close()
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

func TestLongMessagesUseSequences(t *testing.T) {
	_, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	soft := hmac.NewStaticKey(keytest.AccessKeyID, keytest.Secret)
	for _, n := range []int{0, 1, 1024, 1025, 4096, 5000} {
		msg := bytes.Repeat([]byte{'x'}, n)
		got, err := k.HMAC(context.Background(), msg)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		want, _ := soft.HMAC(context.Background(), msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: HMAC differs from software", n)
		}
	}
}

func TestPersistentHandle(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	cfg.PersistentHandle = 0x81000101
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k)
	if ref := k.Reference(); ref.PersistentHandle != cfg.PersistentHandle {
		t.Fatalf("reference handle 0x%x", ref.PersistentHandle)
	}
	opened, err := tpm.Open(context.Background(), tpm.Config{Device: cfg.Device, PersistentHandle: cfg.PersistentHandle, Password: cfg.Password}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, opened)
	opened.Close()
	if _, err := tpm.Import(context.Background(), cfg, keytest.AccessKeyID, keytest.Secret); !errors.Is(err, hmac.ErrKeyExists) || !strings.Contains(err.Error(), "already taken") {
		t.Fatalf("second import at the same handle: %v", err)
	}
	k.Close()
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

func TestClearErrors(t *testing.T) {
	_, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	wrongPassword := k.Reference()
	wrongPassword.Password = "not-the-auth-value"
	wrongParent := k.Reference()
	wrongParent.Password = cfg.Password
	wrongParent.ParentName = []byte("some other parent")
	tests := []struct {
		name    string
		cfg     tpm.Config
		wantErr string
	}{
		{"other parent", wrongParent, "parent key's name differs"},
		{"no blobs", tpm.Config{Device: cfg.Device}, "public and private blobs"},
		{"TPM down", tpm.Config{Device: "tcp://127.0.0.1:1", Public: []byte{1}, Private: []byte{1}}, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tpm.Open(context.Background(), tt.cfg, keytest.AccessKeyID)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "not-the-auth-value") || strings.Contains(err.Error(), cfg.Password) {
				t.Fatal("password in error")
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	_, cfg := swtpmConfig(t)
	ref := importKey(t, cfg).Reference()
	ref.Password = "not-the-auth-value"
	k, err := tpm.Open(context.Background(), ref, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	_, err = k.HMAC(context.Background(), []byte(keytest.Date))
	if err == nil || !strings.Contains(err.Error(), "TPM_RC_AUTH_FAIL") || strings.Contains(err.Error(), "not-the-auth-value") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestConcurrentHMACs(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	keytest.Hammer(t, k, 32, 500)
	k.Close()
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

func TestRecoversAfterTPMRestart(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k)
	sw.Kill()
	_, err := k.HMAC(context.Background(), []byte(keytest.Date))
	if err == nil || !strings.Contains(err.Error(), "tpm:") {
		t.Fatalf("HMAC with the TPM down: %v", err)
	}
	sw.Start()
	keytest.CheckSuite(t, k)
}

func TestSimulator(t *testing.T) {
	// The simulator's seed is fixed so that each connection sees the same
	// storage root key, as a real TPM would.
	open := func() (transport.TPMCloser, error) {
		sim, err := simulator.GetWithFixedSeedInsecure(1234)
		if err != nil {
			return nil, err
		}
		return transport.FromReadWriteCloser(sim), nil
	}
	k := importKey(t, tpm.Config{Open: open})
	keytest.CheckSuite(t, k)
}

// A key sealed to a PCR works while the PCR holds its value at import, and
// not after the PCR changes; resetting it brings the key back.
func TestPCRPolicy(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	cfg.PCRs = []uint{16} // the debug PCR, resettable
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k)
	pub, _ := tpm2.Unmarshal[tpm2.TPM2BPublic](k.Reference().Public)
	contents, _ := pub.Contents()
	if contents.ObjectAttributes.UserWithAuth || len(contents.AuthPolicy.Buffer) == 0 {
		t.Fatal("a PCR-sealed key can be used with its password alone")
	}

	conn, err := tpm.Dial("tcp://" + sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	pcr := tpm2.AuthHandle{Handle: tpm2.TPMHandle(16), Auth: tpm2.PasswordAuth(nil)}
	if _, err := (tpm2.PCRExtend{PCRHandle: pcr, Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
		HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}}}}).Execute(conn); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if _, err := k.HMAC(context.Background(), []byte(keytest.Date)); err == nil || !strings.Contains(err.Error(), "POLICY") {
		t.Fatalf("HMAC after the PCR changed: %v", err)
	}

	conn, err = tpm.Dial("tcp://" + sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (tpm2.PCRReset{PCRHandle: pcr}).Execute(conn); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	keytest.CheckSuite(t, k)
	k.Close()
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

// A key a user imported with tpm2-tools, under a parent they persisted,
// opens from its blobs and parent handle alone.
func TestOpenKeyImportedWithTPM2Tools(t *testing.T) {
	sw, _ := swtpmConfig(t)
	if _, err := exec.LookPath("tpm2_import"); err != nil {
		if testenv.InCI() {
			t.Fatal("tpm2_import (Debian package tpm2-tools) missing")
		}
		t.Skip("tpm2-tools missing: run `make deps`")
	}
	dir := t.TempDir()
	tools := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port="+strings.Split(sw.Addr, ":")[1])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "k.bin"), []byte("AWS4"+keytest.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	tools("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc", "-c", "primary.ctx")
	tools("tpm2_evictcontrol", "-C", "o", "-c", "primary.ctx", "0x81000001")
	tools("tpm2_import", "-C", "0x81000001", "-G", "hmac", "-i", "k.bin", "-u", "key.pub", "-r", "key.priv", "-p", "tools-pass")
	// swtpm has no resource manager: drop what the tools left loaded.
	tools("tpm2_flushcontext", "-t")
	pub, err := os.ReadFile(filepath.Join(dir, "key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := os.ReadFile(filepath.Join(dir, "key.priv"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := tpm.Open(context.Background(), tpm.Config{Device: "tcp://" + sw.Addr, Parent: 0x81000001, Password: "tools-pass", Public: pub, Private: priv}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	keytest.CheckSuite(t, k)
}

func TestCloseDuringHMAC(t *testing.T) {
	_, cfg := swtpmConfig(t)
	keytest.CheckCloseDuringHMAC(t, importKey(t, cfg))
}
