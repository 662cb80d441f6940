package pkcs11_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	p11 "github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

// The test binary serves the check mode, as the plugin's main does, so
// CheckPIN runs in a copy of it.
func TestMain(m *testing.M) {
	if p11.ServePINCheck() {
		return
	}
	os.Exit(m.Run())
}

// While a Key of this process is logged in to the token (so a new
// session's C_Login takes any PIN), CheckPIN still tells the right PIN
// from a wrong one; the PIN shows in no error.
func TestCheckPINWhileLoggedIn(t *testing.T) {
	hsm, cfg := setup(t)
	k := importKey(t, cfg)
	keytest.CheckSuite(t, k) // logged in and signing
	ctx := context.Background()
	check := p11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN}
	if err := p11.CheckPIN(ctx, check); err != nil {
		t.Fatalf("the right PIN: %v", err)
	}
	wrong := "wrong-" + hsm.PIN
	for _, pin := range []string{wrong, "0000", strings.Repeat("9", 300), strings.Repeat("8", 1<<20)} {
		check.PIN = pin
		err := p11.CheckPIN(ctx, check)
		if !errors.Is(err, hmac.ErrAuth) {
			t.Fatalf("a wrong PIN of length %d: %v, want hmac.ErrAuth", len(pin), err)
		}
		for _, secret := range []string{pin, hsm.PIN, hsm.SOPIN} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows a PIN of length %d", len(secret))
			}
		}
	}
	// The open Key still signs: the check did not log this process out.
	keytest.CheckSuite(t, k)

	// The same question asked in this process is answered by the login
	// the Key holds: any PIN passes. This is why the check runs elsewhere.
	check.PIN = wrong
	if err := p11.CheckPINInProcess(check); err != nil {
		t.Fatalf("in-process check while logged in: %v (if this now fails, the fallback detects wrong PINs and its doc should say so)", err)
	}
}

// A token that is not there and a module that cannot load are told apart
// from a refused PIN.
func TestCheckPINFailures(t *testing.T) {
	hsm, _ := setup(t)
	ctx := context.Background()
	err := p11.CheckPIN(ctx, p11.Config{Module: hsm.Module, TokenLabel: "no-such-token", PIN: hsm.PIN})
	if !errors.Is(err, p11.ErrTokenNotFound) || errors.Is(err, hmac.ErrAuth) || !strings.Contains(err.Error(), "no-such-token") {
		t.Fatalf("missing token: %v", err)
	}
	err = p11.CheckPIN(ctx, p11.Config{Module: hsm.Module + ".missing", TokenLabel: hsm.Label, PIN: hsm.PIN})
	if !errors.Is(err, p11.ErrModuleFailed) || errors.Is(err, hmac.ErrAuth) {
		t.Fatalf("missing module: %v", err)
	}
	if strings.Contains(err.Error(), hsm.PIN) {
		t.Fatal("the error shows the PIN")
	}
	if err := p11.CheckPIN(ctx, p11.Config{Module: hsm.Module, PIN: hsm.PIN}); err == nil {
		t.Fatal("no token label or serial: accepted")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p11.CheckPIN(cancelled, p11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// The check mode answers garbage with its own status, and refuses to vouch
// for a PIN when its process is already logged in (as a module that shares
// login state between processes would show it): that proves nothing.
func TestPINCheckModeReports(t *testing.T) {
	hsm, cfg := setup(t)
	var out strings.Builder
	if status := p11.ServePINCheckFrom(strings.NewReader("not json"), &out); status != 6 || !strings.Contains(out.String(), "unreadable") {
		t.Fatalf("garbage request: status %d, report %s", status, out.String())
	}
	importKey(t, cfg) // this process is now logged in
	wrong := "wrong-" + hsm.PIN
	req, _ := json.Marshal(map[string]string{"module": hsm.Module, "token_label": hsm.Label, "pin": wrong})
	out.Reset()
	status := p11.ServePINCheckFrom(bytes.NewReader(req), &out)
	if status != 5 || !strings.Contains(out.String(), "cannot have a PIN checked") {
		t.Fatalf("check in a logged-in process: status %d, report %s", status, out.String())
	}
	if strings.Contains(out.String(), wrong) || strings.Contains(out.String(), hsm.PIN) {
		t.Fatal("the report shows a PIN")
	}
}

// A PIN is not tried when the token says its user PIN is locked or that one
// more wrong PIN would lock it; other flags do not stop it. SoftHSM2 never
// raises these flags, so the decision is tested on its own.
func TestPINTryRefusal(t *testing.T) {
	for _, c := range []struct {
		flags uint
		stop  string
	}{
		{pkcs11.CKF_USER_PIN_LOCKED | pkcs11.CKF_TOKEN_INITIALIZED, "CKF_USER_PIN_LOCKED"},
		{pkcs11.CKF_USER_PIN_FINAL_TRY | pkcs11.CKF_USER_PIN_COUNT_LOW, "CKF_USER_PIN_FINAL_TRY"},
		{pkcs11.CKF_USER_PIN_COUNT_LOW | pkcs11.CKF_LOGIN_REQUIRED | pkcs11.CKF_TOKEN_INITIALIZED, ""},
	} {
		why, stop := p11.PINTryRefusal(c.flags)
		if stop != (c.stop != "") || !strings.Contains(why, c.stop) {
			t.Errorf("flags %#x: %q %v, want a refusal naming %q", c.flags, why, stop, c.stop)
		}
	}
}
