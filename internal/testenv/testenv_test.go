package testenv_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/simulator"
	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

const (
	suiteAccessKey = "AKIDEXAMPLE"
	suiteSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteKDate     = "0138c7a6cbd60aa727b2f653a522567439dfb9f3e72b21f9b25941a42f04a7cd"
)

// TestMain checks that every component the tests started has been stopped.
func TestMain(m *testing.M) {
	code := m.Run()
	if left := childProcesses(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "processes left running after the tests: %v\n", left)
		code = 1
	}
	os.Exit(code)
}

// childProcesses lists the processes whose parent is this test binary.
func childProcesses() []string {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var name, ppid string
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "Name:"); ok {
				name = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "PPid:"); ok {
				ppid = strings.TrimSpace(v)
			}
		}
		if ppid == self {
			out = append(out, name+"("+e.Name()+")")
		}
	}
	return out
}

func TestVaultDevTransitBYOK(t *testing.T) {
	v := testenv.StartVault(t, testenv.VaultOptions{})
	health, err := v.Client.Sys().Health()
	if err != nil || !health.Initialized || health.Sealed {
		t.Fatalf("sys/health: %+v, %v", health, err)
	}
	if !strings.HasPrefix(health.Version, "1.21.0") {
		t.Fatalf("vault version %s, want the pinned 1.21.0", health.Version)
	}
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws-suite"}, suiteAccessKey, suiteSecret)
	if err != nil {
		t.Fatal(err)
	}
	kDate, err := key.HMAC(ctx, []byte("20150830"))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(kDate) != suiteKDate {
		t.Fatalf("kDate from transit = %x, want %s", kDate, suiteKDate)
	}
	// The imported key can be neither exported nor backed up.
	if _, err := v.Client.Logical().Read("transit/export/hmac-key/aws-suite"); err == nil {
		t.Fatal("transit exported the key")
	}
	if _, err := v.Client.Logical().Read("transit/backup/aws-suite"); err == nil {
		t.Fatal("transit backed the key up")
	}
}

func TestVaultFileStorageAndAudit(t *testing.T) {
	v := testenv.StartVault(t, testenv.VaultOptions{FileStorage: true, Audit: true})
	if _, err := v.Client.Logical().Write("sys/mounts/kv", map[string]any{"type": "kv"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().Write("kv/probe", map[string]any{"value": "stored"}); err != nil {
		t.Fatal(err)
	}
	var files int
	_ = filepath.Walk(v.StorageDir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no storage files written")
	}
	audit, err := os.ReadFile(v.AuditPath)
	if err != nil || !strings.Contains(string(audit), `"path":"kv/probe"`) {
		t.Fatalf("audit log has no kv/probe entry (%v)", err)
	}
	if !strings.Contains(v.Process.Tail(2000), "[TRACE]") {
		t.Fatal("vault log has no trace lines")
	}
}

func TestSoftHSMToken(t *testing.T) {
	hsm := testenv.NewSoftHSM(t, "aws-hmac-test")
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("pkcs11-tool (Debian package opensc) missing")
		}
		t.Skip("pkcs11-tool missing: run `make deps`")
	}
	cmd := exec.Command(tool, "--module", hsm.Module, "--list-token-slots")
	cmd.Env = append(os.Environ(), hsm.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "aws-hmac-test") {
		t.Fatalf("token not listed:\n%s", out)
	}
}

func getRandom(t *testing.T, tpm transport.TPM) {
	t.Helper()
	rsp, err := tpm2.GetRandom{BytesRequested: 16}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	if len(rsp.RandomBytes.Buffer) != 16 {
		t.Fatalf("GetRandom returned %d bytes", len(rsp.RandomBytes.Buffer))
	}
}

func TestSWTPM(t *testing.T) {
	sw := testenv.StartSWTPM(t)
	conn, err := tpm.OpenTCP(sw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	getRandom(t, conn)
}

func TestTPMSimulator(t *testing.T) {
	sim, err := simulator.OpenSimulator()
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	getRandom(t, sim)
}

func TestMinIOAssumeRoleAndS3(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	signer := sigv4.NewSigner()
	client, err := stscreds.NewSTSClient(stscreds.Config{
		Key: hmac.NewStaticKey(m.AccessKey, m.SecretKey), Signer: signer, Region: m.Region, Endpoint: m.Endpoint, MaxRetries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := stscreds.NewAssumeRoleProvider(client, "arn:aws:iam::123456789012:role/demo", func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "testenv"
		o.Duration = 15 * time.Minute
	}).Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// List buckets with the temporary credentials, signed by this project.
	req, _ := http.NewRequest(http.MethodGet, m.Endpoint+"/", nil)
	temp := hmac.NewStaticKey(creds.AccessKeyID, creds.SecretAccessKey)
	if err := signer.SignHTTP(ctx, temp, req, sigv4.EmptyStringSHA256, "s3", m.Region, time.Now(), func(o *sigv4.SignerOptions) {
		o.SessionToken = creds.SessionToken
		o.DisableURIPathEscaping = true
	}); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", sigv4.EmptyStringSHA256)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<Name>"+m.Bucket+"</Name>") {
		t.Fatalf("ListBuckets: %d\n%s", resp.StatusCode, body)
	}

	// A wrong secret is refused (MinIO says AccessDenied where AWS says SignatureDoesNotMatch).
	wrong, _ := stscreds.NewSTSClient(stscreds.Config{
		Key: hmac.NewStaticKey(m.AccessKey, "wrong-secret-wrong-secret"), Region: m.Region, Endpoint: m.Endpoint, MaxRetries: -1,
	})
	_, err = stscreds.NewAssumeRoleProvider(wrong, "arn:aws:iam::123456789012:role/demo", func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "testenv"
	}).Retrieve(ctx)
	var stsErr *stscreds.Error
	if !errors.As(err, &stsErr) || stsErr.Code != "AccessDenied" || stsErr.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong secret: %v", err)
	}
}
