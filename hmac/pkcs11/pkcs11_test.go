package pkcs11_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	p11 "github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func setup(t *testing.T) (*testenv.SoftHSM, p11.Config) {
	t.Helper()
	hsm := testenv.NewSoftHSM(t, "aws-hmac")
	return hsm, p11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN, KeyLabel: "aws-AKIDEXAMPLE"}
}

func importKey(t *testing.T, cfg p11.Config) *p11.Key {
	t.Helper()
	k, err := p11.Import(context.Background(), cfg, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestImportAndSign(t *testing.T) {
	_, cfg := setup(t)
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k)
	keytest.NoSecretIn(t, "the key reference", []byte(cfg.KeyLabel+string(k.KeyID())+k.KeyIdentity()))

	// Open by reference only, as the plugin does after a restart.
	opened, err := p11.Open(context.Background(), p11.Config{Module: cfg.Module, TokenLabel: cfg.TokenLabel, PIN: cfg.PIN, KeyLabel: cfg.KeyLabel, KeyID: k.KeyID()}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	keytest.CheckSuite(t, opened)
}

// withRawSession runs fn in a logged-in session opened with miekg/pkcs11
// directly, as an HSM vendor tool would. It finalises the module only if it
// initialised it.
func withRawSession(t *testing.T, hsm *testenv.SoftHSM, fn func(*pkcs11.Ctx, pkcs11.SessionHandle)) {
	t.Helper()
	ctx := pkcs11.New(hsm.Module)
	defer ctx.Destroy()
	if err := ctx.Initialize(); err == nil {
		defer ctx.Finalize()
	} else if !strings.Contains(err.Error(), "ALREADY_INITIALIZED") {
		t.Fatal(err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		info, _ := ctx.GetTokenInfo(s)
		if strings.TrimSpace(info.Label) != hsm.Label {
			continue
		}
		sh, err := ctx.OpenSession(s, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer ctx.CloseSession(sh)
		if err := ctx.Login(sh, pkcs11.CKU_USER, hsm.PIN); err != nil && !strings.Contains(err.Error(), "ALREADY_LOGGED_IN") {
			t.Fatal(err)
		}
		fn(ctx, sh)
		return
	}
	t.Fatal("token not found")
}

func findByLabel(t *testing.T, ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, label string) []pkcs11.ObjectHandle {
	t.Helper()
	if err := ctx.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := ctx.FindObjects(sh, 10)
	_ = ctx.FindObjectsFinal(sh)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestKeyIsNotExportable(t *testing.T) {
	hsm, cfg := setup(t)
	importKey(t, cfg)
	withRawSession(t, hsm, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) { checkNotExportable(t, ctx, sh, cfg.KeyLabel) })
	// Nothing on disk holds the secret in clear either.
	walkFiles(t, hsm.TokenDir)
}

func checkNotExportable(t *testing.T, ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, label string) {
	objs := findByLabel(t, ctx, sh, label)
	if len(objs) != 1 {
		t.Fatalf("%d objects", len(objs))
	}
	if _, err := ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
		t.Fatal("the token handed out CKA_VALUE")
	} else if !strings.Contains(err.Error(), "SENSITIVE") {
		t.Fatalf("CKA_VALUE refused with %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
	attrs, err := ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if attrs[0].Value[0] != 1 || attrs[1].Value[0] != 0 || attrs[2].Value[0] != 1 {
		t.Fatalf("sensitive=%v extractable=%v token=%v", attrs[0].Value, attrs[1].Value, attrs[2].Value)
	}
}

func walkFiles(t *testing.T, path string) {
	info, err := os.Stat(path)
	if err != nil {
		return
	}
	if info.IsDir() {
		entries, _ := os.ReadDir(path)
		for _, e := range entries {
			walkFiles(t, path+"/"+e.Name())
		}
		return
	}
	b, _ := os.ReadFile(path)
	keytest.NoSecretIn(t, path, b)
}

func TestImportRefusesExistingLabel(t *testing.T) {
	_, cfg := setup(t)
	importKey(t, cfg)
	_, err := p11.Import(context.Background(), cfg, keytest.AccessKeyID, "another-secret-another-secret-another-sec")
	if !errors.Is(err, hmac.ErrKeyExists) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second import: %v", err)
	}
}

func createVendorKey(t *testing.T, ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, label string) {
	t.Helper()
	_, err := ctx.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("AWS4"+keytest.Secret)),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A key a vendor tool created (opensc's pkcs11-tool cannot write generic
// secrets, so the test does it through PKCS#11 directly) opens by label.
func TestOpenKeyCreatedByOtherTool(t *testing.T) {
	hsm, cfg := setup(t)
	create := func(label string) {
		withRawSession(t, hsm, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) { createVendorKey(t, ctx, sh, label) })
	}
	create("vendor-key")
	k, err := p11.Open(context.Background(), p11.Config{Module: cfg.Module, TokenLabel: cfg.TokenLabel, PIN: cfg.PIN, KeyLabel: "vendor-key"}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, k)
	k.Close()

	create("vendor-key") // a duplicate label
	if _, err := p11.Open(context.Background(), p11.Config{Module: cfg.Module, TokenLabel: cfg.TokenLabel, PIN: cfg.PIN, KeyLabel: "vendor-key"}, keytest.AccessKeyID); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Fatalf("duplicate labels: %v", err)
	}
}

func TestClearErrors(t *testing.T) {
	hsm, cfg := setup(t)
	// No key of this process is logged in yet, so a wrong PIN reaches C_Login.
	tests := []struct {
		name    string
		cfg     p11.Config
		wantErr string
	}{
		{"wrong PIN", p11.Config{Module: cfg.Module, TokenLabel: cfg.TokenLabel, PIN: "wrong-pin-1234", KeyLabel: cfg.KeyLabel}, "wrong PIN"},
		{"key not found", p11.Config{Module: cfg.Module, TokenLabel: cfg.TokenLabel, PIN: cfg.PIN, KeyLabel: "missing"}, "not found"},
		{"token not found", p11.Config{Module: cfg.Module, TokenLabel: "nope", PIN: cfg.PIN, KeyLabel: cfg.KeyLabel}, "no token"},
		{"no module", p11.Config{Module: "/nonexistent/lib.so", TokenLabel: "x", KeyLabel: "x"}, "cannot load"},
		{"no key label", p11.Config{Module: cfg.Module, TokenLabel: cfg.TokenLabel}, "no key label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p11.Open(context.Background(), tt.cfg, keytest.AccessKeyID)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), hsm.PIN) || strings.Contains(err.Error(), "wrong-pin-1234") {
				t.Fatal("PIN in error")
			}
		})
	}
}

func TestConcurrentHMACs(t *testing.T) {
	_, cfg := setup(t)
	cfg.MaxSessions = 4
	k := importKey(t, cfg)
	keytest.Hammer(t, k, 32, 500)
	if n := k.OpenSessions(); n > cfg.MaxSessions+1 {
		t.Fatalf("%d sessions open, bound is %d+1", n, cfg.MaxSessions)
	}
	k.Close()
	if n := k.OpenSessions(); n != 0 {
		t.Fatalf("%d sessions left after Close", n)
	}
	if _, err := k.HMAC(context.Background(), []byte(keytest.Date)); err == nil {
		t.Fatal("HMAC after Close")
	}
}

// While the token's storage is gone the key fails clearly; once it is back
// the same Key works again.
func TestRecoversAfterTokenOutage(t *testing.T) {
	hsm, cfg := setup(t)
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k)
	moved := hsm.TokenDir + ".away"
	if err := os.Rename(hsm.TokenDir, moved); err != nil {
		t.Fatal(err)
	}
	_, err := k.HMAC(context.Background(), []byte("20150831"))
	t.Logf("while the token is away: %v", err)
	if err := os.Rename(moved, hsm.TokenDir); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("HMAC succeeded while the token directory was away")
	}
	keytest.CheckSuite(t, k)
}

func TestCloseDuringHMAC(t *testing.T) {
	_, cfg := setup(t)
	keytest.CheckCloseDuringHMAC(t, importKey(t, cfg))
}
