package awshmac

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfigBadInput(t *testing.T) {
	e := newTestEnv(t)
	base := e.baseConfig()
	tests := []struct {
		name      string
		data      map[string]any
		wantField string
	}{
		{"no access key", with(base, "access_key", nil), "access_key"},
		{"access key with spaces", with(base, "access_key", "AKID EXAMPLE"), "access_key"},
		{"short access key", with(base, "access_key", "AK"), "access_key"},
		{"unknown store", with(base, "key_store", "vaultish"), "key_store"},
		{"bad region", with(base, "region", "europe"), "region"},
		{"bad sts region", with(base, "sts_region", "EU_WEST"), "sts_region"},
		{"bad sts endpoint", with(base, "sts_endpoint", "ftp://x"), "sts_endpoint"},
		{"relative iam endpoint", with(base, "iam_endpoint", "/iam"), "iam_endpoint"},
		{"retries", with(base, "max_retries", 99), "max_retries"},
		{"short secret", with(base, "secret_key", "short"), "secret_key"},
		{"transit without address", with(base, "key_store", "transit", "transit_token", "x"), "transit_address"},
		{"transit without token", with(base, "key_store", "transit", "transit_address", "http://127.0.0.1:1"), "transit_token"},
		{"transit negative version", with(base, "key_store", "transit", "transit_address", "http://127.0.0.1:1", "transit_token", "x", "transit_key_version", -1), "transit_key_version"},
		{"pkcs11 without module", with(base, "key_store", "pkcs11", "pkcs11_token_label", "t", "pkcs11_pin", "1"), "pkcs11_module"},
		{"pkcs11 without token", with(base, "key_store", "pkcs11", "pkcs11_module", "/x.so", "pkcs11_pin", "1"), "pkcs11_token_label"},
		{"pkcs11 without pin", with(base, "key_store", "pkcs11", "pkcs11_module", "/x.so", "pkcs11_token_label", "t"), "pkcs11_pin"},
		{"pkcs11 bad key id", with(base, "key_store", "pkcs11", "pkcs11_module", "/x.so", "pkcs11_token_label", "t", "pkcs11_pin", "1", "pkcs11_key_id", "xyz"), "pkcs11_key_id"},
		{"pkcs11 sessions", with(base, "key_store", "pkcs11", "pkcs11_module", "/x.so", "pkcs11_token_label", "t", "pkcs11_pin", "1", "pkcs11_max_sessions", 5000), "pkcs11_max_sessions"},
		{"tpm device", with(base, "key_store", "tpm", "tpm_device", "localhost:2321"), "tpm_device"},
		{"tpm handle not hex", with(base, "key_store", "tpm", "tpm_persistent_handle", "zz"), "tpm_persistent_handle"},
		{"tpm handle range", with(base, "key_store", "tpm", "tpm_persistent_handle", "0x01000000"), "tpm_persistent_handle"},
		{"tpm parent range", with(base, "key_store", "tpm", "tpm_parent_handle", "0x40000001"), "tpm_parent_handle"},
		{"tpm pcr out of range", with(base, "key_store", "tpm", "tpm_pcrs", "24"), "tpm_pcrs"},
		{"tpm public not base64", with(base, "key_store", "tpm", "tpm_public", "***"), "tpm_public"},
		{"tink without kek", with(base, "tink_kek_uri", ""), "tink_kek_uri"},
		{"tink hcvault without token", with(base, "tink_kek_uri", "hcvault://127.0.0.1:1/transit/keys/k", "tink_vault_address", "http://127.0.0.1:1"), "tink_vault_token"},
		{"wrong secret fails verification", with(base, "secret_key", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGWRONG"), "SignatureDoesNotMatch"},
		{"unknown access key fails verification", with(base, "access_key", "AKIDUNKNOWNKEY0000"), "InvalidClientTokenId"},
		{"existing key not found", with(base, "secret_key", nil, "tink_keyset", `{"encryptedKeyset":"AAAA"}`), "tink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, "config", tt.data)
			if err != nil {
				t.Fatalf("error instead of a 400: %v", err)
			}
			if resp == nil || !resp.IsError() {
				t.Fatalf("accepted: %v", resp)
			}
			if msg := resp.Error().Error(); !strings.Contains(msg, tt.wantField) {
				t.Fatalf("message %q does not name %s", msg, tt.wantField)
			}
			if keys := storageKeys(t, e.storage); len(keys) != 0 {
				t.Fatalf("stored %v", keys)
			}
		})
	}
}

func TestConfigReadUpdateDelete(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	resp, err := e.request(t, logical.ReadOperation, "config", nil)
	if err != nil || resp == nil {
		t.Fatal(err)
	}
	for _, f := range writeOnlyFields() {
		if _, ok := resp.Data[f]; ok {
			t.Errorf("read returned write-only field %s", f)
		}
	}
	if resp.Data["access_key"] != keytest.AccessKeyID || resp.Data["region"] != "eu-west-3" || resp.Data["tink_keyset_fingerprint"] == "" || resp.Data["tink_key_id"] == int64(0) {
		t.Fatalf("read: %v", resp.Data)
	}
	if _, ok := resp.Data["tink_keyset"]; ok {
		t.Fatal("a read returned the encrypted keyset, which the KEK token would decrypt")
	}
	keyset := resp.Data["tink_keyset_fingerprint"].(string)

	// A partial update keeps everything else, including the imported key.
	e.mustWrite(t, "config", map[string]any{"region": "us-west-2"})
	resp, _ = e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["region"] != "us-west-2" || resp.Data["tink_keyset_fingerprint"] != keyset || resp.Data["tink_kek_uri"] == "" {
		t.Fatalf("partial update changed other fields: %v", resp.Data)
	}

	// Neither storage nor any response holds the secret or K.
	for _, k := range storageKeys(t, e.storage) {
		entry, _ := e.storage.Get(context.Background(), k)
		keytest.NoSecretIn(t, "storage "+k, entry.Value)
	}

	if _, err := e.request(t, logical.DeleteOperation, "config", nil); err != nil {
		t.Fatal(err)
	}
	resp, _ = e.request(t, logical.ReadOperation, "config", nil)
	if resp != nil {
		t.Fatalf("config after delete: %v", resp)
	}
}

func TestConfigWriteDropsCachedKey(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	first := e.engine(t)
	e.mustWrite(t, "roles/s", map[string]any{"credential_type": "session_token"})
	e.mustWrite(t, "config", map[string]any{"region": "us-west-2", "skip_verification": true})
	second := e.engine(t)
	if first == second || first.signer == second.signer {
		t.Fatal("config write kept the old engine and its derived keys")
	}
	if !first.retired {
		t.Fatal("the replaced engine was not retired")
	}
	e.b.invalidate(context.Background(), "config")
	if third := e.engine(t); third == second {
		t.Fatal("Invalidate kept the old engine")
	}
}

// Store failures on a config write are the operator's to fix: 400 naming
// the store, the same for an import and an open, and nothing stored.
func TestConfigStoreFailuresAre400(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	before, _ := e.storage.Get(context.Background(), configStoragePath)

	// The secret again, while the config already holds its keyset.
	resp, err := e.request(t, logical.UpdateOperation, "config", map[string]any{"secret_key": keytest.Secret})
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "secret_key") {
		t.Fatalf("secret_key again: %v %v, want 400 naming secret_key", resp, err)
	}
	// An import whose KEK cannot be reached, and an open likewise.
	missing := tink.LocalKEKScheme + e.kekPath + ".missing"
	for _, data := range []map[string]any{
		{"tink_kek_uri": missing, "tink_keyset": "", "secret_key": keytest.Secret},
		{"tink_kek_uri": missing},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config", data)
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "tink key store") {
			t.Fatalf("%v: %v %v, want 400 naming the tink key store", data, resp, err)
		}
	}
	after, _ := e.storage.Get(context.Background(), configStoragePath)
	if string(after.Value) != string(before.Value) {
		t.Fatal("a failed config write changed the stored config")
	}
}

// Development-only settings: refused unless the registration allows them,
// and then every config write and read warns.
func TestInsecureSettingsNeedTheRegistration(t *testing.T) {
	e := newTestEnv(t)
	e.b.env.allowInsecure = false
	resp, err := e.request(t, logical.UpdateOperation, "config", e.baseConfig())
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "tink_kek_uri") || !strings.Contains(errText(resp, err), envAllowInsecure) {
		t.Fatalf("cleartext KEK without the registration: %v %v", resp, err)
	}
	e.b.env.allowInsecure = true
	e.b.env.stsHosts = append(e.b.env.stsHosts, "iam.example.com") // the host itself is the registration's to allow
	resp = e.mustWrite(t, "config", with(e.baseConfig(), "iam_endpoint", "http://iam.example.com"))
	if resp == nil || len(resp.Warnings) != 2 || !strings.Contains(strings.Join(resp.Warnings, " "), "tink_kek_uri") || !strings.Contains(strings.Join(resp.Warnings, " "), "iam_endpoint") {
		t.Fatalf("write warnings: %v", resp)
	}
	resp, _ = e.request(t, logical.ReadOperation, "config", nil)
	if n := strings.Count(strings.Join(resp.Warnings, "\n"), "insecure, allowed by"); n != 2 {
		t.Fatalf("read warnings: %v", resp.Warnings)
	}
	// Registered again without it: the stored config no longer opens.
	e.b.env.allowInsecure = false
	e.b.dropConfig()
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	resp, err = e.request(t, logical.ReadOperation, "creds/session", nil)
	if status(resp, err) != http.StatusServiceUnavailable {
		t.Fatalf("insecure config under a strict registration: %v %v", resp, err)
	}
}

// writeOnlyCase is one key store configured with every write-only field
// it has, each set to a value the test then looks for.
type writeOnlyCase struct {
	store string
	cfg   func(t *testing.T, e *testEnv) map[string]any
}

func writeOnlyCases() []writeOnlyCase {
	return []writeOnlyCase{
		{"transit", func(t *testing.T, e *testEnv) map[string]any { return e.storeConfig(t, "transit") }},
		{"pkcs11", func(t *testing.T, e *testEnv) map[string]any { return e.storeConfig(t, "pkcs11") }},
		{"tpm", func(t *testing.T, e *testEnv) map[string]any {
			return with(e.storeConfig(t, "tpm"), "tpm_password", "tpm-auth-value-7c1e")
		}},
		{"tink", func(t *testing.T, e *testEnv) map[string]any {
			v := vaultWithKEK(t)
			return with(e.baseConfig(), "tink_kek_uri", "hcvault://"+strings.TrimPrefix(v.Addr, "http://")+"/transit/keys/kek",
				"tink_vault_address", v.Addr, "tink_vault_token", v.Token)
		}},
	}
}

// For every key store, no write-only field — by name or by value, in any
// of the forms a value takes when re-encoded — is in the config read, the
// write's response or warnings, or a failed write's error.
func TestWriteOnlyFieldsNeverReturned(t *testing.T) {
	for _, tc := range writeOnlyCases() {
		t.Run(tc.store, func(t *testing.T) {
			e := newTestEnv(t)
			cfg := tc.cfg(t, e)
			secrets := map[string]string{}
			for _, f := range storeKinds[tc.store].writeOnly {
				if v, _ := cfg[f].(string); v != "" {
					secrets[f] = v
				}
			}
			secrets["secret_key"] = cfg["secret_key"].(string)
			if len(secrets) < 2 {
				t.Fatalf("the %s case sets no store credential: %v", tc.store, secrets)
			}
			resp := e.mustWrite(t, "config", cfg)
			noCredentialIn(t, "the write's response", resp, secrets)
			read, err := e.request(t, logical.ReadOperation, "config", nil)
			noCredentialIn(t, "the read", read, secrets)
			for f := range secrets {
				if _, ok := read.Data[f]; ok || err != nil {
					t.Errorf("the read has %s (%v)", f, err)
				}
			}
			failed, err := e.request(t, logical.UpdateOperation, "config", with(cfg, "region", "moon"))
			if status(failed, err) != http.StatusBadRequest {
				t.Fatalf("the failing write: %v %v", failed, err)
			}
			noCredentialIn(t, "a failed write", failed, secrets)
			noCredentialIn(t, "a failed write's error", err, secrets)
		})
	}
}

// noneIn fails when v, printed in full, holds any secret in any form.
func noCredentialIn(t *testing.T, what string, v any, secrets map[string]string) {
	t.Helper()
	text := fmt.Sprintf("%+v %#v", v, v)
	for field, s := range secrets {
		for form, enc := range map[string]string{
			"raw": s, "base64": base64.StdEncoding.EncodeToString([]byte(s)), "hex": hex.EncodeToString([]byte(s)),
			"url-escaped": url.QueryEscape(s), "quoted": strconv.Quote(s),
		} {
			if strings.Contains(text, enc) {
				t.Errorf("%s holds %s (%s)", what, field, form)
			}
		}
	}
}
