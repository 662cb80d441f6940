package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// The PKCS#11 user PIN changed behind the plugin's back, then the plugin
// reloaded, through a real Vault with the plugin registered from its
// binary: requests answer 503 naming the store, pkcs11_pin and the retry
// time; the token is tried once (one refusal logged, whatever the number
// of requests); the config read says why; writing the new PIN ends it. No
// PIN shows in an answer or the server log.
func TestPKCS11WrongPINEndToEnd(t *testing.T) {
	if os.Getenv("VAULT_BIN") == "" && !testenv.InCI() {
		t.Skip("VAULT_BIN not set: run `make test`")
	}
	w := &world{hsm: testenv.NewSoftHSM(t, "aws-hmac-pin"), peer: ststest.New()}
	t.Cleanup(w.peer.Close)
	w.peer.AddUserKey("vault", keytest.AccessKeyID, keytest.Secret)
	w.vault = testenv.StartVault(t, testenv.VaultOptions{})
	w.vault.RegisterPlugin(t, pluginBinary, pluginName, append(w.hsm.Env(), "AWS_HMAC_PKCS11_MODULES="+w.hsm.Module)...)
	w.cli(t, "secrets", "enable", "-path="+mount, pluginName)
	newPIN := "pin2-" + w.hsm.PIN
	w.secretForms = []string{w.hsm.PIN, newPIN, w.hsm.SOPIN, keytest.Secret}
	w.cli(t, append([]string{"write", mount + "/config", "access_key=" + keytest.AccessKeyID, "secret_key=" + keytest.Secret,
		"key_store=pkcs11", "sts_endpoint=" + w.peer.URL}, w.storeFields("pkcs11")...)...)
	w.cli(t, "write", mount+"/roles/signer", "sign_with=key", "allowed_services=sts",
		"allowed_actions=sts:GetCallerIdentity", "allowed_regions=*", "allowed_hosts=*")
	sign := []string{"write", mount + "/sign/signer", "url=https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", "service=sts"}
	w.cli(t, sign...)

	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		t.Fatal("pkcs11-tool (Debian package opensc, scripts/install-deps.sh) is needed")
	}
	change := exec.Command(tool, "--module", w.hsm.Module, "--token-label", w.hsm.Label, "--login", "--pin", w.hsm.PIN, "--change-pin", "--new-pin", newPIN)
	change.Env = append(change.Environ(), w.hsm.Env()...)
	if out, err := change.CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool --change-pin: %v\n%s", err, redact(string(out), w))
	}
	w.cli(t, "plugin", "reload", "-plugin="+pluginName, "-scope=global")

	var answers strings.Builder
	for i := range 8 {
		out, err := w.tryCLI(sign...)
		answers.WriteString(out)
		if err == nil || !strings.Contains(out, "503") || !strings.Contains(out, "the pkcs11 key store refused the plugin's credential (pkcs11_pin)") || !strings.Contains(out, "not asked again until") {
			t.Fatalf("sign %d after the PIN change: %v\n%s", i, err, redact(out, w))
		}
	}
	read := w.cli(t, "read", "-format=json", mount+"/config")
	if !strings.Contains(read, "CKR_PIN_INCORRECT") || !strings.Contains(read, "key_store_retry_at") {
		t.Fatalf("config read does not say why:\n%s", redact(read, w))
	}
	if n := strings.Count(w.serverLog(t), "refused the plugin's credential; backing off"); n != 1 {
		t.Fatalf("%d refusals logged for 8 requests in the window, want 1 (one login)", n)
	}

	w.cli(t, "write", mount+"/config", "pkcs11_pin="+newPIN)
	w.cli(t, sign...)
	all := answers.String() + read + w.serverLog(t)
	for _, s := range w.secretForms {
		if strings.Contains(all, s) {
			t.Fatalf("an answer or the server log shows a secret of length %d", len(s))
		}
	}
}

// serverLog is the Vault server's log, the plugin's lines included.
func (w *world) serverLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(w.vault.Process.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
