package awshmac

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

// otherSecret is the secret of a second key on the same token, one the
// plugin must not be pointed at without its PIN.
const otherSecret = "otherSecretKeyForTheSecondKey0123456789x"

// pinWorld is a backend configured with key A on a SoftHSM2 token that also
// holds key B, logged in and signing with A.
// Its PIN checks run on its fake clock, through a throttle of their own,
// and are counted: each one that reaches the token is a fresh process and
// one C_Login.
type pinWorld struct {
	*backoffEnv
	hsm     *testenv.SoftHSM
	url     string
	answers strings.Builder // every answer, for the PIN search
	checks  atomic.Int32    // PIN checks that reached the token
}

func newPINWorld(t *testing.T) *pinWorld {
	t.Helper()
	w := &pinWorld{backoffEnv: newBackoffEnv(t), hsm: testenv.NewSoftHSM(t, "aws-hmac-pin")}
	throttle, check := pkcs11PINChecks, checkPKCS11PIN
	t.Cleanup(func() { pkcs11PINChecks, checkPKCS11PIN = throttle, check })
	pkcs11PINChecks = &pinCheckThrottle{now: w.clock.Now}
	checkPKCS11PIN = func(ctx context.Context, cfg pkcs11.Config) error {
		w.checks.Add(1)
		return pkcs11.CheckPIN(ctx, cfg)
	}
	w.b.env.pkcs11Modules = append(w.b.env.pkcs11Modules, w.hsm.Module)
	w.mustWrite(t, "config", with(w.baseConfig(), "tink_kek_uri", nil, "key_store", "pkcs11",
		"pkcs11_module", w.hsm.Module, "pkcs11_token_label", w.hsm.Label, "pkcs11_pin", w.hsm.PIN))
	b, err := pkcs11.Import(context.Background(), pkcs11.Config{Module: w.hsm.Module, TokenLabel: w.hsm.Label,
		PIN: w.hsm.PIN, KeyLabel: "key-b"}, keytest.AccessKeyID, otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	w.addSigner(t)
	w.url = w.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	w.signsWith(t, keytest.Secret, "key A, right PIN")
	return w
}

// signsWith signs once and checks the signature is the one secret gives.
func (w *pinWorld) signsWith(t *testing.T, secret, when string) {
	t.Helper()
	resp, err := w.request(t, logical.UpdateOperation, "sign/signer", map[string]any{"url": w.url, "service": "sts", "region": "us-west-2"})
	w.answers.WriteString(errText(resp, err) + fmt.Sprint(resp))
	if msg := errText(resp, err); msg != "" {
		t.Fatalf("sign (%s): %s", when, msg)
	}
	checker := &signChecker{signer: sigv4.NewSigner(), key: hmac.NewStaticKey(keytest.AccessKeyID, secret)}
	if msg := checker.check(resp, w.url, "us-west-2"); msg != "" {
		t.Fatalf("sign (%s) did not use the expected key: %s", when, msg)
	}
}

// refused writes data to config and checks the answer is a 400 naming
// pkcs11_pin that leaves the stored config as it was.
func (w *pinWorld) refused(t *testing.T, what string, data map[string]any) {
	t.Helper()
	before := w.storedConfig(t)
	resp, err := w.request(t, logical.UpdateOperation, "config", data)
	text := errText(resp, err)
	w.answers.WriteString(text + fmt.Sprint(resp))
	if code := status(resp, err); code != http.StatusBadRequest || !strings.Contains(text, "pkcs11_pin") || !strings.Contains(text, "wrong PIN") {
		t.Fatalf("%s: %d %q, want 400 naming pkcs11_pin", what, code, text)
	}
	if after := w.storedConfig(t); after != before {
		t.Fatalf("%s changed the stored config", what)
	}
	w.clock.Set(w.clock.Now().Add(pinCheckWaitMax)) // past the PIN checks' window
}

// notChecked writes data to config and checks the answer is a 400 naming
// pkcs11_pin and when the next check is allowed, that the token was not
// asked, and that the stored config is as it was.
func (w *pinWorld) notChecked(t *testing.T, what string, data map[string]any) {
	t.Helper()
	before, checks := w.storedConfig(t), w.checks.Load()
	resp, err := w.request(t, logical.UpdateOperation, "config", data)
	text := errText(resp, err)
	w.answers.WriteString(text + fmt.Sprint(resp))
	if code := status(resp, err); code != http.StatusBadRequest || !strings.Contains(text, "pkcs11_pin: not checked") || !strings.Contains(text, "next PIN check on this pkcs11_module is allowed at") {
		t.Fatalf("%s: %d %q, want 400 naming pkcs11_pin and the next check", what, code, text)
	}
	if n := w.checks.Load() - checks; n != 0 {
		t.Fatalf("%s: the token was asked %d times", what, n)
	}
	if after := w.storedConfig(t); after != before {
		t.Fatalf("%s changed the stored config", what)
	}
}

func (w *pinWorld) storedConfig(t *testing.T) string {
	t.Helper()
	entry, err := w.storage.Get(context.Background(), configStoragePath)
	if err != nil || entry == nil {
		t.Fatalf("stored config: %v %v", entry, err)
	}
	return string(entry.Value)
}

// While the plugin is logged in to the token, any new session's C_Login
// passes whatever the PIN: a config write's PIN is checked by the token in a
// fresh process instead. A write pointing the plugin at another key on the
// token with a wrong PIN, and a write of a wrong PIN alone, are 400s naming
// pkcs11_pin that change nothing (the plugin still signs with key A); the
// right PIN moves it to key B. No PIN shows in an answer or the log.
func TestPKCS11PINCheckedWhileLoggedIn(t *testing.T) {
	w := newPINWorld(t)
	wrong := "wrong-" + w.hsm.PIN

	// (a) another key on the same token, a PIN the caller made up.
	toB := map[string]any{"pkcs11_key_label": "key-b", "pkcs11_key_id": "", "skip_verification": true}
	w.refused(t, "key B with a wrong PIN", with(toB, "pkcs11_pin", wrong))
	w.signsWith(t, keytest.Secret, "after the refused move to key B")
	// (b) a wrong PIN alone, then the move giving that same PIN.
	w.refused(t, "a wrong PIN alone", map[string]any{"pkcs11_pin": wrong, "skip_verification": true})
	w.refused(t, "key B with the PIN a refused write gave", with(toB, "pkcs11_pin", wrong))
	w.signsWith(t, keytest.Secret, "after the refused PIN")
	data, read := w.readConfig(t)
	w.answers.WriteString(read)
	if data["pkcs11_key_label"] != "aws-hmac-"+keytest.AccessKeyID {
		t.Fatalf("the key label changed: %v", data["pkcs11_key_label"])
	}

	// The right PIN moves it.
	w.mustWrite(t, "config", with(toB, "pkcs11_pin", w.hsm.PIN))
	w.signsWith(t, otherSecret, "key B, right PIN")
	noSecrets(t, "an answer", w.answers.String(), w.hsm.PIN, wrong, w.hsm.SOPIN, otherSecret)
	noSecrets(t, "the server log", w.log.String(), w.hsm.PIN, wrong, w.hsm.SOPIN, otherSecret)
}

// A refused PIN holds back the next PIN checks on the module: a config
// write giving a PIN in the window, a wrong one or the right one, is a 400
// naming pkcs11_pin and when the next check is allowed, and the token is
// not asked (no process started, no C_Login). The window doubles with each
// refusal in a row and ends at once with an accepted PIN. No PIN shows.
func TestPKCS11PINChecksThrottled(t *testing.T) {
	w := newPINWorld(t)
	wrong := "wrong-" + w.hsm.PIN
	alone := func(pin string) map[string]any { return map[string]any{"pkcs11_pin": pin, "skip_verification": true} }
	start := w.checks.Load()

	w.refusedOnce(t, "a first wrong PIN", alone(wrong))
	w.notChecked(t, "a second wrong PIN at once", alone(wrong))
	w.notChecked(t, "the right PIN in the window", alone(w.hsm.PIN))
	if n := w.checks.Load() - start; n != 1 {
		t.Fatalf("three PINs in the window reached the token %d times, want 1", n)
	}

	w.clock.Set(w.clock.Now().Add(pinCheckWaitMin + time.Second))
	w.mustWrite(t, "config", alone(w.hsm.PIN))
	w.signsWith(t, keytest.Secret, "after the window, right PIN")

	// An accepted PIN started afresh: one refusal, a 5 s window; a second
	// refusal after it, a longer one.
	w.refusedOnce(t, "a wrong PIN after the right one", alone(wrong))
	w.clock.Set(w.clock.Now().Add(pinCheckWaitMin + time.Second))
	w.refusedOnce(t, "a wrong PIN after the first window", alone(wrong))
	w.clock.Set(w.clock.Now().Add(pinCheckWaitMin + time.Second))
	w.notChecked(t, "a PIN within the doubled window", alone(w.hsm.PIN))
	w.clock.Set(w.clock.Now().Add(pinCheckWaitMin))
	w.mustWrite(t, "config", alone(w.hsm.PIN))
	if n := w.checks.Load() - start; n != 5 {
		t.Fatalf("the token was asked %d times, want 5", n)
	}
	noSecrets(t, "an answer", w.answers.String(), w.hsm.PIN, wrong, w.hsm.SOPIN)
	noSecrets(t, "the server log", w.log.String(), w.hsm.PIN, wrong, w.hsm.SOPIN)
}

// refusedOnce: a write whose PIN the token refuses, asked once, says when
// the next check is allowed.
func (w *pinWorld) refusedOnce(t *testing.T, what string, data map[string]any) {
	t.Helper()
	checks := w.checks.Load()
	resp, err := w.request(t, logical.UpdateOperation, "config", data)
	text := errText(resp, err)
	w.answers.WriteString(text + fmt.Sprint(resp))
	if code := status(resp, err); code != http.StatusBadRequest || !strings.Contains(text, "wrong PIN") || !strings.Contains(text, "the next PIN check on this pkcs11_module is allowed at") {
		t.Fatalf("%s: %d %q, want 400 naming pkcs11_pin and the next check", what, code, text)
	}
	if n := w.checks.Load() - checks; n != 1 {
		t.Fatalf("%s: the token was asked %d times, want 1", what, n)
	}
}

// While a PIN check is under way (config writes of one mount wait for each
// other, so here those of two mounts sharing the process's throttle), a PIN
// for the same module is refused without asking the token.
func TestPKCS11PINCheckOneAtATime(t *testing.T) {
	w := newPINWorld(t)
	entered, release := make(chan struct{}), make(chan struct{})
	checkPKCS11PIN = func(ctx context.Context, cfg pkcs11.Config) error {
		w.checks.Add(1)
		close(entered)
		<-release
		return pkcs11.CheckPIN(ctx, cfg)
	}
	cfg := pkcs11.Config{Module: w.hsm.Module, TokenLabel: w.hsm.Label, PIN: w.hsm.PIN}
	first := make(chan error, 1)
	go func() { first <- pkcs11PINChecks.check(context.Background(), cfg) }()
	<-entered
	other := cfg
	other.PIN = "wrong-" + w.hsm.PIN
	err := pkcs11PINChecks.check(context.Background(), other)
	close(release)
	var bad *badInputError
	if !errors.As(err, &bad) || !strings.HasPrefix(bad.msg, "pkcs11_pin: not checked: another PIN check") || w.checks.Load() != 2 {
		t.Fatalf("a PIN given during another check: %v, %d checks (1 at the start, 1 under way)", err, w.checks.Load())
	}
	if err := <-first; err != nil {
		t.Fatalf("the check under way: %v", err)
	}
}
