package awshmac

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/miekg/pkcs11"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// logBuffer collects the backend's log lines, at trace level, to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// attestEnv is a test environment whose backend logs into a buffer.
func attestEnv(t *testing.T) (*testEnv, *logBuffer) {
	t.Helper()
	e := newTestEnv(t)
	logs := &logBuffer{}
	conf := &logical.BackendConfig{System: e.b.System(), StorageView: e.storage,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})}
	if err := e.b.Backend.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	return e, logs
}

func (e *testEnv) attestation(t *testing.T, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "config/attestation", data)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("config/attestation: %v %v", err, resp)
	}
	return resp
}

func (e *testEnv) periodic(t *testing.T) {
	t.Helper()
	if err := e.b.periodic(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
}

// configWarnings are the config read's warnings.
func (e *testEnv) configWarnings(t *testing.T) string {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "config", nil)
	if err != nil || resp == nil {
		t.Fatalf("config read: %v", err)
	}
	return strings.Join(resp.Warnings, "\n")
}

// noSecretsIn fails if any of secrets appears in what.
func noSecretsIn(t *testing.T, where string, what any, secrets ...string) {
	t.Helper()
	raw, _ := json.Marshal(what)
	s := string(raw)
	if str, ok := what.(string); ok {
		s = str
	}
	for _, secret := range append(secrets, keytest.Secret, "AWS4"+keytest.Secret) {
		for _, form := range []string{secret, hex.EncodeToString([]byte(secret)), base64.StdEncoding.EncodeToString([]byte(secret))} {
			if strings.Contains(s, form) {
				t.Fatalf("%s holds a secret", where)
			}
		}
	}
}

// Tink: the answer says the keyset is decrypted in the plugin's memory and
// claims nothing more; the periodic check finds nothing and records when.
func TestAttestationTink(t *testing.T) {
	e, logs := attestEnv(t)
	e.configure(t)
	resp := e.attestation(t, map[string]any{"nonce": "00112233445566778899"})
	d := resp.Data
	statement := d["statement"].(string)
	ev := d["evidence"].(map[string]any)
	if d["key_store"] != "tink" || d["access_key"] != keytest.AccessKeyID || !strings.Contains(statement, "decrypted into the plugin's memory") ||
		!strings.Contains(statement, "No claim is made that the key cannot leave") || !strings.Contains(statement, "cleartext file") ||
		ev["decrypted_in_plugin_memory"] != true || ev["kek_scheme"] != "insecure-local-kek" || len(d["exposures"].([]string)) != 0 || len(resp.Warnings) != 0 {
		t.Fatalf("tink attestation: %v %v", d, resp.Warnings)
	}
	if lc := d["last_check"].(map[string]any); lc["period"] != int64(600) || lc["checked_at"] != "" {
		t.Fatalf("before any check: %v", lc)
	}
	e.periodic(t)
	lc := e.attestation(t, nil).Data["last_check"].(map[string]any)
	if lc["checked_at"] == "" || len(lc["exposures"].([]string)) != 0 || lc["problem"] != "" {
		t.Fatalf("after a check: %v", lc)
	}
	if w := e.configWarnings(t); strings.Contains(w, "attestation") {
		t.Fatalf("config read warns: %s", w)
	}
	noSecretsIn(t, "the answer", resp.Data)
	noSecretsIn(t, "the log", logs.String())
}

// Bad input is a 400 naming its field; the check period is validated and
// 0 turns the check off.
func TestAttestationInput(t *testing.T) {
	e := newTestEnv(t)
	if resp, err := e.request(t, logical.ReadOperation, "config/attestation", nil); status(resp, err) != http.StatusBadRequest {
		t.Fatalf("before config: %v %v", resp, err)
	}
	e.configure(t)
	long := hex.EncodeToString(make([]byte, 65))
	for _, tc := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"nonce": "abcd"}, "nonce"},
		{map[string]any{"nonce": long}, "nonce"},
		{map[string]any{"nonce": "not hex, not base64!"}, "nonce"},
		{map[string]any{"credential_blob": "AAAA"}, "credential_secret"},
		{map[string]any{"credential_blob": "%%%", "credential_secret": "AAAA"}, "credential_blob"},
		{map[string]any{"credential_blob": "AAAA", "credential_secret": "AAAA"}, "credential_blob"}, // tink has no AK
		{map[string]any{"endorsement_key": "dsa-1024"}, "endorsement_key"},
	} {
		resp, err := e.request(t, logical.ReadOperation, "config/attestation", tc.data)
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), tc.field) {
			t.Errorf("%v: %d %q, want a 400 naming %s", tc.data, status(resp, err), errText(resp, err), tc.field)
		}
	}
	for _, good := range []string{"00112233445566778899aabbccddeeff", base64.StdEncoding.EncodeToString([]byte("a nonce of mine")), base64.RawURLEncoding.EncodeToString(make([]byte, 64))} {
		e.attestation(t, map[string]any{"nonce": good})
	}
	resp, err := e.request(t, logical.UpdateOperation, "config", map[string]any{"attestation_check_period": -1})
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "attestation_check_period") {
		t.Fatalf("negative period: %v %v", resp, err)
	}
	e.mustWrite(t, "config", map[string]any{"attestation_check_period": 0, "skip_verification": true})
	e.periodic(t)
	if st, _ := e.b.attestationStatus(context.Background(), e.storage); st != nil {
		t.Fatalf("a check ran with the period 0: %+v", st)
	}
	resp, _ = e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["attestation_check_period"] != int64(0) || resp.Data["rotate_on_exposure"] != false {
		t.Fatalf("config read: %v", resp.Data)
	}
}

// PKCS#11: the attributes exactly as SoftHSM2 reports them for an
// imported key, the token's identity, and neither the PIN nor the secret
// in the answer or the log.
func TestAttestationPKCS11(t *testing.T) {
	e, logs := attestEnv(t)
	hsm := testenv.NewSoftHSM(t, "attest")
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "pkcs11",
		"pkcs11_module", hsm.Module, "pkcs11_token_label", hsm.Label, "pkcs11_pin", hsm.PIN))
	resp := e.attestation(t, nil)
	ev := resp.Data["evidence"].(map[string]any)
	attrs := ev["attributes"].(map[string]bool)
	want := map[string]bool{"CKA_SENSITIVE": true, "CKA_EXTRACTABLE": false, "CKA_NEVER_EXTRACTABLE": false, "CKA_ALWAYS_SENSITIVE": false, "CKA_LOCAL": false}
	for name, v := range want {
		if got, ok := attrs[name]; !ok || got != v {
			t.Errorf("%s = %v (reported %v), want %v", name, got, ok, v)
		}
	}
	token := ev["token"].(map[string]any)
	if token["label"] != hsm.Label || token["serial_number"] == "" || !strings.Contains(token["manufacturer_id"].(string), "SoftHSM") || token["model"] == "" {
		t.Fatalf("token %v", token)
	}
	if s := resp.Data["statement"].(string); !strings.Contains(s, "imported") || !strings.Contains(s, "CKA_LOCAL=false") || !strings.Contains(s, "not sign") {
		t.Fatalf("statement %q", s)
	}
	e.periodic(t)
	if lc := e.attestation(t, nil).Data["last_check"].(map[string]any); lc["checked_at"] == "" || len(lc["exposures"].([]string)) != 0 {
		t.Fatalf("last check %v", lc)
	}
	noSecretsIn(t, "the answer", resp.Data, hsm.PIN, hsm.SOPIN)
	noSecretsIn(t, "the log", logs.String(), hsm.PIN, hsm.SOPIN)
}

// TPM: a certification over the caller's nonce that a verifier holding
// only the answer checks, and a credential made for ak_name with the EK
// public area from the answer, released by the TPM: the AK is tied to the
// EK. A credential for another Name is a 400.
func TestAttestationTPM(t *testing.T) {
	e, logs := attestEnv(t)
	sw := testenv.StartSWTPM(t)
	e.b.env.tpmAddresses = []string{sw.Addr}
	const password = "tpm-key-auth-value"
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "tpm", "tpm_device", "tcp://"+sw.Addr, "tpm_password", password))
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	resp := e.attestation(t, map[string]any{"nonce": hex.EncodeToString(nonce)})
	ev := testenv.EvidenceOf(t, resp.Data["evidence"].(map[string]any))
	c, err := tpm.VerifyCertification(ev, nonce)
	if err != nil || !c.FixedTPM || !c.FixedParent || len(c.Exposures()) != 0 {
		t.Fatalf("verification: %+v %v", c, err)
	}
	if s := resp.Data["statement"].(string); !strings.Contains(s, "fixedTPM and fixedParent") || !strings.Contains(s, "cannot show") || strings.Contains(s, "not fresh") {
		t.Fatalf("statement %q", s)
	}
	secret := []byte("a credential of the verifier's")
	id, enc := testenv.MakeCredential(t, ev.EKs[tpm.EKECC].Public, ev.AKName, secret)
	resp = e.attestation(t, map[string]any{"credential_blob": base64.StdEncoding.EncodeToString(id), "credential_secret": base64.StdEncoding.EncodeToString(enc)})
	if got := resp.Data["evidence"].(map[string]any)["activated_credential"]; got != base64.StdEncoding.EncodeToString(secret) {
		t.Fatalf("activated %v", got)
	}
	id, enc = testenv.MakeCredential(t, ev.EKs[tpm.EKECC].Public, ev.Name, secret)
	bad, err := e.request(t, logical.ReadOperation, "config/attestation", map[string]any{"credential_blob": base64.StdEncoding.EncodeToString(id), "credential_secret": base64.StdEncoding.EncodeToString(enc)})
	if status(bad, err) != http.StatusBadRequest || !strings.Contains(errText(bad, err), "credential_blob") {
		t.Fatalf("a credential for another Name: %v %v", bad, err)
	}
	if s := e.attestation(t, nil).Data["statement"].(string); !strings.Contains(s, "not fresh") {
		t.Fatalf("without a nonce: %q", s)
	}
	e.periodic(t)
	if lc := e.attestation(t, nil).Data["last_check"].(map[string]any); lc["checked_at"] == "" || len(lc["exposures"].([]string)) != 0 {
		t.Fatalf("last check %v", lc)
	}
	noSecretsIn(t, "the answer", resp.Data, password)
	noSecretsIn(t, "the log", logs.String(), password)
}

// transitAttestWorld is a real Vault with transit and the plugin's own
// token, limited as the README recommends.
func transitAttestWorld(t *testing.T, e *testEnv, extra map[string]any) (*testenv.Vault, string) {
	t.Helper()
	v := testenv.StartVault(t, testenv.VaultOptions{})
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	policy := `path "transit/hmac/aws-hmac-*" { capabilities = ["update"] }
path "transit/keys/aws-hmac-*" { capabilities = ["read", "create", "update"] }
path "transit/wrapping_key" { capabilities = ["read"] }
path "transit/keys/+/config" { capabilities = ["deny"] }`
	if err := v.Client.Sys().PutPolicy("aws-hmac", policy); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"aws-hmac"}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "transit", "transit_address", v.Addr, "transit_token", tok.Auth.ClientToken)
	for k, val := range extra {
		cfg[k] = val
	}
	e.mustWrite(t, "config", cfg)
	return v, tok.Auth.ClientToken
}

// Transit: the flags read with the plugin's own token. A key made
// exportable behind the plugin's back shows at once in the answer, and
// after the periodic check in the config read's warnings and the log; a
// token that may no longer read the key is named in a 200; transit down
// is a 503.
func TestAttestationTransit(t *testing.T) {
	e, logs := attestEnv(t)
	v, token := transitAttestWorld(t, e, map[string]any{"attestation_check_period": 1})
	d := e.attestation(t, nil).Data
	ev := d["evidence"].(map[string]any)
	if ev["readable"] != true || ev["type"] != "hmac" || ev["exportable"] != false || ev["allow_plaintext_backup"] != false ||
		ev["imported_key"] != true || ev["latest_version"] != 1 || len(d["exposures"].([]string)) != 0 {
		t.Fatalf("transit evidence: %v", d)
	}
	e.periodic(t)
	if w := e.configWarnings(t); strings.Contains(w, "attestation") {
		t.Fatalf("config read warns before any change: %s", w)
	}

	if _, err := v.Client.Logical().Write("transit/keys/aws-hmac-akidexample/config", map[string]any{"exportable": true}); err != nil {
		t.Fatal(err)
	}
	resp := e.attestation(t, nil)
	if ex := resp.Data["exposures"].([]string); len(ex) != 1 || !strings.Contains(ex[0], "exportable") || len(resp.Warnings) != 1 {
		t.Fatalf("after exportable=true: %v %v", ex, resp.Warnings)
	}
	e.periodic(t)
	if w := e.configWarnings(t); !strings.Contains(w, "regressed") || !strings.Contains(w, "exportable is true") {
		t.Fatalf("config read after the check: %q", w)
	}
	if !strings.Contains(logs.String(), "protection has regressed") {
		t.Fatal("the regression is not logged")
	}

	if err := v.Client.Sys().PutPolicy("aws-hmac", `path "transit/hmac/aws-hmac-*" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	d = e.attestation(t, nil).Data
	if ev := d["evidence"].(map[string]any); ev["readable"] != false || !strings.Contains(d["statement"].(string), "may not read transit/keys/aws-hmac-akidexample") {
		t.Fatalf("token without read: %v", d)
	}
	v.Process.Stop()
	down, err := e.request(t, logical.ReadOperation, "config/attestation", nil)
	if status(down, err) != http.StatusServiceUnavailable || !strings.Contains(errText(down, err), "transit") {
		t.Fatalf("transit down: %v %v", down, err)
	}
	noSecretsIn(t, "the answer", d, token, v.Token)
	noSecretsIn(t, "the log", logs.String(), token, v.Token)
}

// rotate_on_exposure: the periodic check that finds the transit key
// exportable rotates the access key away at once: the exposed secret is
// dead at the STS peer, the new one works from a new, unexported transit
// key, and the config read says why the key changed.
func TestAttestationTransitRotateOnExposure(t *testing.T) {
	e, logs := attestEnv(t)
	v, _ := transitAttestWorld(t, e, map[string]any{"rotate_on_exposure": true, "attestation_check_period": 1, "old_key_grace": 1})
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.periodic(t)
	if configuredKey(t, e) != keytest.AccessKeyID {
		t.Fatal("rotated without an exposure")
	}
	if _, err := v.Client.Logical().Write("transit/keys/aws-hmac-akidexample/config", map[string]any{"allow_plaintext_backup": true, "exportable": true}); err != nil {
		t.Fatal(err)
	}
	e.periodic(t)
	newID := configuredKey(t, e)
	if newID == keytest.AccessKeyID || keyWorks(e, keytest.AccessKeyID, keytest.Secret) || !works(t, e) {
		t.Fatalf("after the exposure the key is %s; the exposed one still works: %v", newID, keyWorks(e, keytest.AccessKeyID, keytest.Secret))
	}
	if w := e.configWarnings(t); !strings.Contains(w, "previous access key "+keytest.AccessKeyID+" was rotated away") {
		t.Fatalf("config read after the rotation: %q", w)
	}
	d := e.attestation(t, nil).Data
	if ev := d["evidence"].(map[string]any); ev["exportable"] != false || len(d["exposures"].([]string)) != 0 || d["access_key"] != newID {
		t.Fatalf("the new key: %v", d)
	}
	if !strings.Contains(logs.String(), "rotated away") {
		t.Fatal("the rotation is not logged")
	}
	noSecretsIn(t, "the log", logs.String(), e.peer.Secret(newID))
}

// createExposedKey puts K on the token as a key that is neither sensitive
// nor unextractable, as a careless tool might.
func createExposedKey(t *testing.T, hsm *testenv.SoftHSM, label string) {
	t.Helper()
	ctx := pkcs11.New(hsm.Module)
	if err := ctx.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer ctx.Destroy()
	defer ctx.Finalize()
	slots, err := ctx.GetSlotList(true)
	if err != nil || len(slots) == 0 {
		t.Fatalf("slots %v %v", slots, err)
	}
	sh, err := ctx.OpenSession(slots[0], pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Login(sh, pkcs11.CKU_USER, hsm.PIN); err != nil {
		t.Fatal(err)
	}
	_, err = ctx.CreateObject(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("AWS4"+keytest.Secret)),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A key the token would hand out is named in the answer and, after the
// periodic check, on config reads; a config naming a protected key drops
// the warning at once, and the next check finds nothing.
func TestAttestationPKCS11Exposed(t *testing.T) {
	e := newTestEnv(t)
	hsm := testenv.NewSoftHSM(t, "exposed")
	createExposedKey(t, hsm, "exposed")
	base := with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "pkcs11", "pkcs11_module", hsm.Module,
		"pkcs11_token_label", hsm.Label, "pkcs11_pin", hsm.PIN, "attestation_check_period", 60)
	e.mustWrite(t, "config", with(base, "secret_key", nil, "pkcs11_key_label", "exposed"))
	resp := e.attestation(t, nil)
	if ex := resp.Data["exposures"].([]string); len(ex) != 2 || len(resp.Warnings) != 1 || !strings.Contains(resp.Data["statement"].(string), "CAN leave") {
		t.Fatalf("an exposed key: %v %v", resp.Data, resp.Warnings)
	}
	e.periodic(t)
	if w := e.configWarnings(t); !strings.Contains(w, "CKA_SENSITIVE is not true") || !strings.Contains(w, "CKA_EXTRACTABLE is not false") {
		t.Fatalf("config read: %q", w)
	}
	e.mustWrite(t, "config", with(base, "pkcs11_key_label", "protected"))
	if w := e.configWarnings(t); strings.Contains(w, "attestation") {
		t.Fatalf("the exposed key's warning outlived it: %q", w)
	}
	e.periodic(t)
	if lc := e.attestation(t, nil).Data["last_check"].(map[string]any); lc["checked_at"] == "" || len(lc["exposures"].([]string)) != 0 {
		t.Fatalf("the protected key's check: %v", lc)
	}
}
