package e2e

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// A config write that points the plugin at another key on the token it is
// logged in to, with a PIN the caller made up, through a real Vault with the
// plugin registered from its binary: the plugin's login would accept any
// PIN, so the binary checks it in a fresh copy of itself. The write is a 400
// naming pkcs11_pin (as is a wrong PIN alone), the config keeps its key,
// and signatures still come from it (the STS peer, which knows only that
// key's secret, accepts them).
// No PIN shows in an answer or the server log.
func TestPKCS11PINCheckedEndToEnd(t *testing.T) {
	if os.Getenv("VAULT_BIN") == "" && !testenv.InCI() {
		t.Skip("VAULT_BIN not set: run `make test`")
	}
	w := &world{hsm: testenv.NewSoftHSM(t, "aws-hmac-pincheck"), peer: ststest.New()}
	t.Cleanup(w.peer.Close)
	w.peer.AddUserKey("vault", keytest.AccessKeyID, keytest.Secret)
	const otherSecret = "otherSecretKeyForTheSecondKey0123456789x"
	other, err := pkcs11.Import(context.Background(), pkcs11.Config{Module: w.hsm.Module, TokenLabel: w.hsm.Label,
		PIN: w.hsm.PIN, KeyLabel: "key-b"}, keytest.AccessKeyID, otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Close()
	wrong := "wrong-" + w.hsm.PIN
	w.secretForms = []string{w.hsm.PIN, wrong, w.hsm.SOPIN, keytest.Secret, otherSecret}
	w.vault = testenv.StartVault(t, testenv.VaultOptions{})
	w.vault.RegisterPlugin(t, pluginBinary, pluginName, append(w.hsm.Env(), "AWS_HMAC_PKCS11_MODULES="+w.hsm.Module)...)
	w.cli(t, "secrets", "enable", "-path="+mount, pluginName)
	w.cli(t, append([]string{"write", mount + "/config", "access_key=" + keytest.AccessKeyID, "secret_key=" + keytest.Secret,
		"key_store=pkcs11", "sts_endpoint=" + w.peer.URL}, w.storeFields("pkcs11")...)...)
	w.cli(t, "write", mount+"/roles/signer", "sign_with=key", "allowed_services=sts",
		"allowed_actions=sts:GetCallerIdentity", "allowed_regions=*", "allowed_hosts=*")
	w.signedAccepted(t, "the configured key") // logged in now

	out, err := w.tryCLI("write", mount+"/config", "pkcs11_key_label=key-b", "pkcs11_key_id=",
		"pkcs11_pin="+wrong, "skip_verification=true")
	if err == nil || !strings.Contains(out, "400") || !strings.Contains(out, "pkcs11_pin") || !strings.Contains(out, "wrong PIN") {
		t.Fatalf("move to key B with a wrong PIN: %v\n%s", err, redact(out, w))
	}
	alone, err := w.tryCLI("write", mount+"/config", "pkcs11_pin="+wrong, "skip_verification=true")
	if err == nil || !strings.Contains(alone, "400") || !strings.Contains(alone, "pkcs11_pin") {
		t.Fatalf("a wrong PIN alone: %v\n%s", err, redact(alone, w))
	}
	out += alone
	read := w.cli(t, "read", "-format=json", mount+"/config")
	if !strings.Contains(read, `"pkcs11_key_label": "aws-hmac-`+keytest.AccessKeyID+`"`) {
		t.Fatalf("the config changed:\n%s", redact(read, w))
	}
	w.signedAccepted(t, "after the refused write")

	all := out + read + w.serverLog(t)
	for _, s := range w.secretForms {
		if strings.Contains(all, s) {
			t.Fatalf("an answer or the server log shows a secret of length %d", len(s))
		}
	}
}

// signedAccepted has the plugin sign GetCallerIdentity for the STS peer and
// sends it there: the peer accepts only the configured key's signature.
func (w *world) signedAccepted(t *testing.T, when string) {
	t.Helper()
	url := w.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	s, err := w.vault.Client.Logical().Write(mount+"/sign/signer", map[string]any{"url": url, "service": "sts", "region": "us-east-1"})
	if err != nil || s == nil {
		t.Fatalf("sign (%s): %v", when, err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.Data["url"].(string), nil)
	headers, _ := s.Data["headers"].(map[string]any)
	for k, v := range headers {
		req.Header.Set(k, v.(string))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the STS peer answered %d to the signature made %s", resp.StatusCode, when)
	}
}
