package awshmac

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

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
type pinWorld struct {
	*backoffEnv
	hsm     *testenv.SoftHSM
	url     string
	answers strings.Builder // every answer, for the PIN search
}

func newPINWorld(t *testing.T) *pinWorld {
	t.Helper()
	w := &pinWorld{backoffEnv: newBackoffEnv(t), hsm: testenv.NewSoftHSM(t, "aws-hmac-pin")}
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
