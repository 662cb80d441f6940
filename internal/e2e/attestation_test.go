package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// attMount is one key store's mount for the attestation phase.
func attMount(name string) string { return "aws-hmac-att-" + name }

// runAttestation reads config/attestation through the real server for
// every key store, checks each answer as a verifier would, then changes a
// transit key behind the plugin's back and waits for Vault's periodic call
// to find it: warned on one mount, rotated away on another.
func (w *world) runAttestation(t *testing.T) {
	for _, store := range []string{"pkcs11", "tpm", "tink"} {
		w.attestConfigure(t, attMount(store), store, "")
	}
	w.attestPKCS11(t)
	w.attestTPM(t)
	tink := w.attestation(t, attMount("tink"), nil)
	if s := tink.Data["statement"].(string); !strings.Contains(s, "decrypted into the plugin's memory") || !strings.Contains(s, "No claim is made") {
		t.Fatalf("tink statement: %q", s)
	}
	w.attestTransitExposure(t)
}

// attestConfigure mounts the plugin at m and configures store with a new
// IAM user of the STS peer; it returns the access key.
func (w *world) attestConfigure(t *testing.T, m, store string, extra ...string) string {
	t.Helper()
	w.cli(t, "secrets", "enable", "-path="+m, pluginName)
	id, secret := w.peer.AddUser("att-" + strings.TrimPrefix(m, "aws-hmac-att-"))
	w.rememberSecret(secret)
	args := append([]string{"write", m + "/config", "access_key=" + id, "secret_key=" + secret, "key_store=" + store,
		"sts_endpoint=" + w.peer.URL, "iam_endpoint=" + w.peer.URL, "region=us-east-1", "old_key_grace=1s"}, w.storeFieldsFor(store, id)...)
	for _, e := range extra {
		if e != "" {
			args = append(args, e)
		}
	}
	w.cli(t, args...)
	return id
}

// attestation reads config/attestation through the HTTP API; the answer
// must hold no secret, PIN or token in any form.
func (w *world) attestation(t *testing.T, m string, query map[string][]string) *api.Secret {
	t.Helper()
	s, err := w.vault.Client.Logical().ReadWithData(m+"/config/attestation", query)
	if err != nil || s == nil {
		t.Fatalf("%s/config/attestation: %v", m, err)
	}
	w.noSecretIn(t, m+"/config/attestation", s)
	return s
}

func (w *world) noSecretIn(t *testing.T, what string, v any) {
	t.Helper()
	raw, _ := json.Marshal(v)
	for i, form := range w.secretForms {
		if len(form) >= 8 && bytes.Contains(raw, []byte(form)) {
			t.Fatalf("%s holds secret material (form %d)", what, i)
		}
	}
}

// attestPKCS11 reads the attributes as SoftHSM2 reports them for an
// imported key, through the vault CLI as an operator would.
func (w *world) attestPKCS11(t *testing.T) {
	out := w.cli(t, "read", "-format=json", attMount("pkcs11")+"/config/attestation")
	w.noSecretIn(t, "the CLI's answer", out)
	var s struct{ Data map[string]any }
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("vault read output: %v", err)
	}
	ev := s.Data["evidence"].(map[string]any)
	attrs := ev["attributes"].(map[string]any)
	want := map[string]bool{"CKA_SENSITIVE": true, "CKA_EXTRACTABLE": false, "CKA_NEVER_EXTRACTABLE": false, "CKA_ALWAYS_SENSITIVE": false, "CKA_LOCAL": false}
	for name, v := range want {
		if attrs[name] != v {
			t.Errorf("SoftHSM2 reports %s = %v, want %v", name, attrs[name], v)
		}
	}
	token := ev["token"].(map[string]any)
	if token["label"] != w.hsm.Label || token["serial_number"] == "" || !strings.Contains(token["manufacturer_id"].(string), "SoftHSM") {
		t.Fatalf("token %v", token)
	}
	if st := s.Data["statement"].(string); !strings.Contains(st, "imported") || len(s.Data["exposures"].([]any)) != 0 {
		t.Fatalf("pkcs11 answer: %v", s.Data)
	}
}

// attestTPM verifies the swtpm's certification over a fresh nonce from the
// answer's public parts, with the AK pinned by deriving it on the host
// with the command the answer gives, and activates a credential made for
// the AK with the EK from the answer.
func (w *world) attestTPM(t *testing.T) {
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	s := w.attestation(t, attMount("tpm"), map[string][]string{"nonce": {hex.EncodeToString(nonce)}})
	m := s.Data["evidence"].(map[string]any)
	ev := testenv.EvidenceOf(t, m)
	c, err := tpm.VerifyCertification(ev, nonce)
	if err != nil {
		t.Fatalf("the swtpm's certification does not verify: %v", err)
	}
	if !c.FixedTPM || !c.FixedParent || len(c.Exposures()) != 0 || m["duplicable"] != false {
		t.Fatalf("certified properties %+v", c.Properties)
	}
	if pinned := w.derivedAKName(t, m["ak_command"].(string)); !bytes.Equal(pinned, c.AKName) {
		t.Fatalf("signed by AK %x; the host derives %x", c.AKName, pinned)
	}
	secret := []byte("the verifier's credential")
	id, enc := testenv.MakeCredential(t, ev.EKs[tpm.EKECC].Public, ev.AKName, secret)
	s = w.attestation(t, attMount("tpm"), map[string][]string{
		"credential_blob": {base64.StdEncoding.EncodeToString(id)}, "credential_secret": {base64.StdEncoding.EncodeToString(enc)}})
	if got := s.Data["evidence"].(map[string]any)["activated_credential"]; got != base64.StdEncoding.EncodeToString(secret) {
		t.Fatalf("activated credential %v", got)
	}
}

// derivedAKName runs the answer's ak_command (tpm2-tools) against the
// swtpm and reads the Name of the key it derives.
func (w *world) derivedAKName(t *testing.T, command string) []byte {
	t.Helper()
	if _, err := exec.LookPath("tpm2_createprimary"); err != nil {
		if testenv.InCI() {
			t.Fatal("tpm2-tools missing: make deps installs them")
		}
		t.Skip("tpm2-tools missing: run make deps")
	}
	dir := t.TempDir()
	port := w.tpm.Addr[strings.LastIndex(w.tpm.Addr, ":")+1:]
	script := command + " -c ak.ctx >/dev/null && tpm2_readpublic -c ak.ctx -n ak.name >/dev/null && tpm2_flushcontext -t"
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port="+port)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	name, err := os.ReadFile(filepath.Join(dir, "ak.name"))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// attestTransitExposure reads two transit keys' flags, then makes both
// exportable with the root token, behind the plugin's back: Vault's
// periodic call finds it; the mount without rotate_on_exposure warns on
// config reads, the one with it rotates the key away.
func (w *world) attestTransitExposure(t *testing.T) {
	warnID := w.attestConfigure(t, attMount("transit-warn"), "transit", "attestation_check_period=1s")
	rotID := w.attestConfigure(t, attMount("transit-rotate"), "transit", "attestation_check_period=1s", "rotate_on_exposure=true")
	rotSecret := w.peer.Secret(rotID)
	for _, m := range []string{attMount("transit-warn"), attMount("transit-rotate")} {
		ev := w.attestation(t, m, nil).Data["evidence"].(map[string]any)
		if ev["readable"] != true || ev["exportable"] != false || ev["allow_plaintext_backup"] != false || ev["type"] != "hmac" || ev["latest_version"] == nil {
			t.Fatalf("%s: transit flags %v", m, ev)
		}
	}
	for _, id := range []string{warnID, rotID} {
		if _, err := w.vault.Client.Logical().Write("transit/keys/aws-hmac-"+strings.ToLower(id)+"/config", map[string]any{"exportable": true}); err != nil {
			t.Fatal(err)
		}
	}
	if ex := w.attestation(t, attMount("transit-warn"), nil).Data["exposures"].([]any); len(ex) != 1 {
		t.Fatalf("exposures right after the change: %v", ex)
	}
	deadline := time.Now().Add(3 * time.Minute)
	warned, rotated := false, ""
	for !warned || rotated == "" {
		if time.Now().After(deadline) {
			t.Fatalf("within 3 minutes of Vault's periodic calls: warned %v, rotated to %q", warned, rotated)
		}
		time.Sleep(2 * time.Second) // waiting for Vault's periodic call
		warned = strings.Contains(w.configWarnings(t, attMount("transit-warn")), "exportable is true")
		if s, _ := w.vault.Client.Logical().Read(attMount("transit-rotate") + "/config"); s != nil && s.Data["access_key"] != rotID {
			rotated = s.Data["access_key"].(string)
		}
	}
	w.rememberSecret(w.peer.Secret(rotated))
	// The old key dies once old_key_grace has passed after the switch.
	w.eventually(t, "the exposed key dead at the STS peer", func() bool { return !w.peerTakes(rotID, rotSecret) })
	if !strings.Contains(w.configWarnings(t, attMount("transit-rotate")), "rotated away") {
		t.Fatal("the rotated mount's config read does not say why")
	}
	if d := w.attestation(t, attMount("transit-rotate"), nil).Data; d["access_key"] != rotated || len(d["exposures"].([]any)) != 0 {
		t.Fatalf("after the rotation: %v", d)
	}
}

func (w *world) configWarnings(t *testing.T, m string) string {
	t.Helper()
	s, err := w.vault.Client.Logical().Read(m + "/config")
	if err != nil || s == nil {
		t.Fatalf("%s/config: %v", m, err)
	}
	w.noSecretIn(t, m+"/config", s)
	return strings.Join(s.Warnings, "\n")
}
