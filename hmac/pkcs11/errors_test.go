package pkcs11_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	p11 "github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// A refused PIN wraps hmac.ErrAuth, so the plugin backs off; a missing key
// or token does not, and no error carries the PIN.
func TestPINRefusalIsErrAuth(t *testing.T) {
	hsm, cfg := setup(t)
	// Closed first: while any session of the process is logged in, the
	// token answers CKR_USER_ALREADY_LOGGED_IN to whatever PIN.
	importKey(t, cfg).Close()
	wrong := cfg
	wrong.PIN = "wrong-pin-5678"
	_, err := p11.Open(context.Background(), wrong, keytest.AccessKeyID)
	if !errors.Is(err, hmac.ErrAuth) || !strings.Contains(err.Error(), "CKR_PIN_INCORRECT") {
		t.Fatalf("wrong PIN: %v, want hmac.ErrAuth naming CKR_PIN_INCORRECT", err)
	}
	missing := cfg
	missing.KeyLabel = "missing"
	if _, err := p11.Open(context.Background(), missing, keytest.AccessKeyID); err == nil || errors.Is(err, hmac.ErrAuth) {
		t.Fatalf("missing key: %v, want an error that is not hmac.ErrAuth", err)
	}
	if strings.Contains(err.Error(), hsm.PIN) || strings.Contains(err.Error(), wrong.PIN) {
		t.Fatal("the error shows a PIN")
	}
}

// privateModule copies the SoftHSM2 library to its own path, so this test
// loads and initialises a fresh copy whatever other tests keep loaded.
func privateModule(t *testing.T, module string) string {
	t.Helper()
	in, err := os.Open(module)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "libsofthsm2.so")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each failure a registration setting fixes says which, against the real
// SoftHSM2: a module path that does not load, SoftHSM2 without its
// configuration, and SoftHSM2 reading a configuration that is not the
// token's (SOFTHSM2_CONF not given to the plugin).
func TestRegistrationHints(t *testing.T) {
	hsm, cfg := setup(t)
	cfg.Module = filepath.Join(t.TempDir(), "no-such-pkcs11.so")
	_, err := p11.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err == nil || !strings.Contains(err.Error(), "missing on this Vault node") {
		t.Fatalf("missing module: %v, want a hint", err)
	}

	cfg.Module = privateModule(t, hsm.Module)
	t.Setenv("SOFTHSM2_CONF", filepath.Join(t.TempDir(), "softhsm2.conf"))
	_, err = p11.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err == nil || !strings.Contains(err.Error(), "initialise") || !strings.Contains(err.Error(), "vault plugin register -env SOFTHSM2_CONF=") {
		t.Fatalf("SoftHSM2 without its configuration: %v, want the SOFTHSM2_CONF hint", err)
	}

	other := testenv.NewSoftHSM(t, "another-token") // sets SOFTHSM2_CONF to its own
	cfg.Module = privateModule(t, other.Module)
	_, err = p11.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err == nil || !strings.Contains(err.Error(), "no token with label") || !strings.Contains(err.Error(), "vault plugin register -env SOFTHSM2_CONF=") {
		t.Fatalf("SoftHSM2 reading another configuration: %v, want the SOFTHSM2_CONF hint", err)
	}
}
