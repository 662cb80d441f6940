package awshmac

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

const testRoleARN = "arn:aws:iam::123456789012:role/deploy"

type testEnv struct {
	b       *backend
	storage logical.Storage
	peer    *ststest.Server
	kekPath string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	config := logical.TestBackendConfig()
	config.StorageView = &logical.InmemStorage{}
	if sys, ok := config.System.(*logical.StaticSystemView); ok {
		sys.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "1.21.0"}
	}
	b, err := Factory(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	peer := ststest.New()
	t.Cleanup(peer.Close)
	peer.AddUserKey("vault", keytest.AccessKeyID, keytest.Secret)
	peer.AddRole(ststest.Role{ARN: testRoleARN, MaxSessionDuration: 4 * time.Hour})
	peer.AddMFADevice("arn:aws:iam::123456789012:mfa/vault", "123456")
	kek := filepath.Join(t.TempDir(), "kek.json")
	if err := tink.NewLocalKEK(kek); err != nil {
		t.Fatal(err)
	}
	return &testEnv{b: b.(*backend), storage: config.StorageView, peer: peer, kekPath: kek}
}

func (e *testEnv) request(t *testing.T, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage, DisplayName: "token-test"}
	if op == logical.UpdateOperation || op == logical.CreateOperation {
		checkFound, exists, err := e.b.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if checkFound && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return e.b.HandleRequest(context.Background(), req)
}

func (e *testEnv) mustWrite(t *testing.T, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := e.request(t, logical.UpdateOperation, path, data)
	if err != nil || (resp != nil && resp.IsError()) {
		t.Fatalf("write %s: %v %v", path, err, resp)
	}
	return resp
}

// baseConfig is a working config on the Tink store with a local KEK.
func (e *testEnv) baseConfig() map[string]any {
	return map[string]any{
		"access_key": keytest.AccessKeyID, "secret_key": keytest.Secret, "key_store": "tink",
		"tink_kek_uri": tink.LocalKEKScheme + e.kekPath, "sts_endpoint": e.peer.URL, "region": "eu-west-3",
	}
}

func (e *testEnv) configure(t *testing.T) {
	t.Helper()
	e.mustWrite(t, "config", e.baseConfig())
}

func storageKeys(t *testing.T, s logical.Storage) []string {
	t.Helper()
	keys, err := logical.CollectKeys(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// errText is a failed response's message, whether a plain 400 or one
// with its own status code.
func errText(resp *logical.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	if resp == nil {
		return ""
	}
	if resp.IsError() {
		return resp.Error().Error()
	}
	if body, ok := resp.Data[logical.HTTPRawBody].(string); ok {
		return body
	}
	return ""
}

// status is a failed response's HTTP status.
func status(resp *logical.Response, err error) int {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return coded.Code()
	}
	if err != nil || resp == nil {
		return 0
	}
	if code, ok := resp.Data[logical.HTTPStatusCode].(int); ok {
		return code
	}
	if resp.IsError() {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

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
	for _, f := range writeOnlyFields {
		if _, ok := resp.Data[f]; ok {
			t.Errorf("read returned write-only field %s", f)
		}
	}
	if resp.Data["access_key"] != keytest.AccessKeyID || resp.Data["region"] != "eu-west-3" || resp.Data["tink_keyset"] == "" {
		t.Fatalf("read: %v", resp.Data)
	}
	keyset := resp.Data["tink_keyset"].(string)

	// A partial update keeps everything else, including the imported key.
	e.mustWrite(t, "config", map[string]any{"region": "us-west-2"})
	resp, _ = e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["region"] != "us-west-2" || resp.Data["tink_keyset"] != keyset || resp.Data["tink_kek_uri"] == "" {
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
	_, signer1, _, err := e.b.client(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	e.mustWrite(t, "roles/s", map[string]any{"credential_type": "session_token"})
	e.mustWrite(t, "config", map[string]any{"region": "us-west-2", "skip_verification": true})
	_, signer2, _, _ := e.b.client(context.Background(), e.storage)
	if signer1 == signer2 {
		t.Fatal("config write kept the old signer and its derived keys")
	}
	e.b.invalidate(context.Background(), "config")
	_, signer3, _, _ := e.b.client(context.Background(), e.storage)
	if signer3 == signer2 {
		t.Fatal("Invalidate kept the old signer")
	}
}

func TestRoleBadInput(t *testing.T) {
	e := newTestEnv(t)
	assumed := map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN}
	tests := []struct {
		name      string
		data      map[string]any
		wantField string
	}{
		{"no type", map[string]any{}, "credential_type"},
		{"unknown type", map[string]any{"credential_type": "iam_user"}, "credential_type"},
		{"assumed without arns", map[string]any{"credential_type": "assumed_role"}, "role_arns"},
		{"bad role arn", with(assumed, "role_arns", "arn:aws:iam::1234:role/x"), "role_arns"},
		{"user arn as role", with(assumed, "role_arns", "arn:aws:iam::123456789012:user/x"), "role_arns"},
		{"arns on session token", map[string]any{"credential_type": "session_token", "role_arns": testRoleARN}, "role_arns"},
		{"policy on session token", map[string]any{"credential_type": "session_token", "policy_document": "{}"}, "policy_document"},
		{"bad policy arn", with(assumed, "policy_arns", "arn:aws:s3:::bucket"), "policy_arns"},
		{"eleven policy arns", with(assumed, "policy_arns", "arn:aws:iam::aws:policy/P0,arn:aws:iam::aws:policy/P1,arn:aws:iam::aws:policy/P2,arn:aws:iam::aws:policy/P3,arn:aws:iam::aws:policy/P4,arn:aws:iam::aws:policy/P5,arn:aws:iam::aws:policy/P6,arn:aws:iam::aws:policy/P7,arn:aws:iam::aws:policy/P8,arn:aws:iam::aws:policy/P9,arn:aws:iam::aws:policy/P10"), "policy_arns"},
		{"policy not json", with(assumed, "policy_document", "{nope"), "policy_document"},
		{"policy too long", with(assumed, "policy_document", `{"a":"`+strings.Repeat("x", 2100)+`"}`), "policy_document"},
		{"tag key chars", with(assumed, "session_tags", "bad!key=v"), "session_tags"},
		{"tag value too long", with(assumed, "session_tags", "k="+strings.Repeat("v", 300)), "session_tags"},
		{"tag keys differ in case", with(assumed, "session_tags", "Team=a,team=b"), "session_tags"},
		{"transitive not a tag", with(assumed, "session_tags", "team=a", "transitive_tag_keys", "env"), "transitive_tag_keys"},
		{"transitive on federation", map[string]any{"credential_type": "federation_token", "transitive_tag_keys": "a"}, "transitive_tag_keys"},
		{"external id short", with(assumed, "external_id", "x"), "external_id"},
		{"source identity aws:", with(assumed, "source_identity", "aws:me"), "source_identity"},
		{"mfa serial short", with(assumed, "mfa_serial_number", "abc"), "mfa_serial_number"},
		{"mfa on federation", map[string]any{"credential_type": "federation_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/x"}, "mfa_serial_number"},
		{"max ttl too long for role", with(assumed, "max_sts_ttl", "13h"), "max_sts_ttl"},
		{"max ttl too short", map[string]any{"credential_type": "session_token", "max_sts_ttl": "10m"}, "max_sts_ttl"},
		{"default above max", with(assumed, "default_sts_ttl", "2h", "max_sts_ttl", "1h"), "default_sts_ttl"},
		{"bad service", with(assumed, "allowed_services", "S3!"), "allowed_services"},
		{"bad region", with(assumed, "allowed_regions", "mars-1"), "allowed_regions"},
		{"bad host glob", with(assumed, "allowed_hosts", "s3.*.amazonaws.com"), "allowed_hosts"},
		{"bad name", with(assumed, "name", "x"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "roles/r1"
			if tt.name == "bad name" {
				path = "roles/" + strings.Repeat("n", 200)
			}
			resp, err := e.request(t, logical.UpdateOperation, path, tt.data)
			if err != nil {
				t.Fatalf("error instead of a 400: %v", err)
			}
			if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tt.wantField) {
				t.Fatalf("got %v, want a 400 naming %s", resp, tt.wantField)
			}
			if keys := storageKeys(t, e.storage); len(keys) != 0 {
				t.Fatalf("stored %v", keys)
			}
		})
	}
}

func TestRoleReadListUpdateDelete(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "roles/deploy", map[string]any{
		"credential_type": "assumed_role", "role_arns": testRoleARN, "session_tags": "team=platform",
		"transitive_tag_keys": "team", "max_sts_ttl": "2h", "allowed_services": "s3,sts",
	})
	e.mustWrite(t, "roles/deploy", map[string]any{"external_id": "partner-42"})
	resp, err := e.request(t, logical.ReadOperation, "roles/deploy", nil)
	if err != nil || resp == nil {
		t.Fatal(err)
	}
	d := resp.Data
	if d["external_id"] != "partner-42" || d["max_sts_ttl"] != int64(7200) || d["default_sts_ttl"] != int64(3600) ||
		len(d["role_arns"].([]string)) != 1 || d["session_tags"].(map[string]string)["team"] != "platform" {
		t.Fatalf("role: %v", d)
	}
	e.mustWrite(t, "roles/other", map[string]any{"credential_type": "session_token"})
	list, _ := e.request(t, logical.ListOperation, "roles/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 2 {
		t.Fatalf("list: %v", keys)
	}
	if _, err := e.request(t, logical.DeleteOperation, "roles/other", nil); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.request(t, logical.ReadOperation, "roles/other", nil); resp != nil {
		t.Fatal("role still there after delete")
	}
}

func callerIdentity(t *testing.T, peer *ststest.Server, data map[string]any) string {
	t.Helper()
	client := sts.New(sts.Options{
		Region: "eu-west-3", BaseEndpoint: aws.String(peer.URL),
		Credentials: credentials.NewStaticCredentialsProvider(data["access_key"].(string), data["secret_key"].(string), data["session_token"].(string)),
	})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("minted credentials refused: %v", err)
	}
	return aws.ToString(out.Arn)
}

func TestCredsEveryType(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token", "default_sts_ttl": "2h"})
	e.mustWrite(t, "roles/session-mfa", map[string]any{"credential_type": "session_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/vault"})
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "max_sts_ttl": "4h",
		"session_tags": "team=platform", "transitive_tag_keys": "team", "policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess",
		"policy_document": `{"Version": "2012-10-17", "Statement": []}`, "source_identity": "vault"})
	e.mustWrite(t, "roles/fed", map[string]any{"credential_type": "federation_token", "policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess"})
	tests := []struct {
		path     string
		data     map[string]any
		wantARN  string
		wantLife time.Duration
	}{
		{"creds/session", nil, "arn:aws:iam::123456789012:user/vault", 2 * time.Hour},
		{"sts/session", map[string]any{"ttl": "30m"}, "arn:aws:iam::123456789012:user/vault", 30 * time.Minute},
		{"creds/session-mfa", map[string]any{"mfa_code": "123456"}, "arn:aws:iam::123456789012:user/vault", time.Hour},
		{"creds/deploy", map[string]any{"role_session_name": "app-1", "ttl": "3h"}, "arn:aws:sts::123456789012:assumed-role/deploy/app-1", 3 * time.Hour},
		{"creds/fed", map[string]any{"role_session_name": "app-2"}, "arn:aws:sts::123456789012:federated-user/app-2", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var op logical.Operation = logical.ReadOperation
			if tt.data != nil {
				op = logical.UpdateOperation
			}
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: tt.path, Data: tt.data, Storage: e.storage, DisplayName: "token-app"})
			if err != nil || resp == nil || resp.IsError() {
				t.Fatalf("%v %v", err, resp)
			}
			d := resp.Data
			if d["session_token"] != d["security_token"] || d["session_token"] == "" {
				t.Fatal("session_token and security_token differ or are empty")
			}
			if resp.Secret == nil || resp.Secret.Renewable {
				t.Fatal("no lease, or a renewable one")
			}
			if resp.Secret.TTL < tt.wantLife-time.Minute || resp.Secret.TTL > tt.wantLife {
				t.Fatalf("lease %v, want about %v", resp.Secret.TTL, tt.wantLife)
			}
			if exp, err := time.Parse(time.RFC3339, d["expiration"].(string)); err != nil || time.Until(exp) > tt.wantLife+time.Minute {
				t.Fatalf("expiration %v", d["expiration"])
			}
			if got := callerIdentity(t, e.peer, d); got != tt.wantARN {
				t.Fatalf("credentials are %s, want %s", got, tt.wantARN)
			}
			if strings.HasPrefix(tt.path, "creds/deploy") || strings.HasPrefix(tt.path, "creds/fed") {
				if d["arn"] != tt.wantARN {
					t.Fatalf("arn %v", d["arn"])
				}
			}
		})
	}
}

func TestCredsBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "max_sts_ttl": "2h"})
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.mustWrite(t, "roles/mfa", map[string]any{"credential_type": "session_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/vault"})
	e.mustWrite(t, "roles/fed", map[string]any{"credential_type": "federation_token"})
	e.mustWrite(t, "roles/ghost", map[string]any{"credential_type": "assumed_role", "role_arns": "arn:aws:iam::123456789012:role/ghost"})
	tests := []struct {
		path      string
		data      map[string]any
		wantField string
	}{
		{"creds/nope", nil, "name"},
		{"creds/deploy", map[string]any{"ttl": "3h"}, "ttl"},
		{"creds/deploy", map[string]any{"ttl": "5m"}, "ttl"},
		{"creds/deploy", map[string]any{"role_arn": "arn:aws:iam::123456789012:role/other"}, "role_arn"},
		{"creds/deploy", map[string]any{"role_session_name": "bad name!"}, "role_session_name"},
		{"creds/session", map[string]any{"role_arn": testRoleARN}, "role_arn"},
		{"creds/session", map[string]any{"role_session_name": "x1"}, "role_session_name"},
		{"creds/session", map[string]any{"mfa_code": "123456"}, "mfa_code"},
		{"creds/mfa", nil, "mfa_code"},
		{"creds/mfa", map[string]any{"mfa_code": "12ab56"}, "mfa_code"},
		{"creds/mfa", map[string]any{"mfa_code": "000000"}, "AccessDenied"},
		{"creds/fed", map[string]any{"role_session_name": strings.Repeat("n", 40)}, "role_session_name"},
		{"creds/ghost", nil, "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := len(storageKeys(t, e.storage))
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: tt.path, Data: tt.data, Storage: e.storage})
			if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), tt.wantField) {
				t.Fatalf("got %v %v, want a 400 naming %s", err, resp, tt.wantField)
			}
			if after := len(storageKeys(t, e.storage)); after != before {
				t.Fatal("a failed request stored something")
			}
		})
	}
}

func TestKeyStoreOutageIs503(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.b.reset()
	if err := os.Rename(e.kekPath, e.kekPath+".away"); err != nil {
		t.Fatal(err)
	}
	resp, err := e.request(t, logical.ReadOperation, "creds/session", nil)
	if status(resp, err) != http.StatusServiceUnavailable || !strings.Contains(errText(resp, err), "tink") {
		t.Fatalf("got %v %v, want 503 naming the tink store", err, resp)
	}
	if err := os.Rename(e.kekPath+".away", e.kekPath); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.request(t, logical.ReadOperation, "creds/session", nil); err != nil || resp.IsError() {
		t.Fatalf("after recovery: %v %v", err, resp)
	}
}

func TestSignScopeAndOutput(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	host := strings.TrimPrefix(e.peer.URL, "http://")
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token",
		"allowed_services": "sts", "allowed_regions": "eu-west-3", "allowed_hosts": "127.0.0.1"})
	e.mustWrite(t, "roles/nothing", map[string]any{"credential_type": "session_token"})
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	good := map[string]any{"method": "POST", "url": e.peer.URL + "/", "service": "sts",
		"headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"}, "body": base64.StdEncoding.EncodeToString([]byte(body))}

	forbiddenCases := []struct {
		name, path string
		data       map[string]any
		wantField  string
	}{
		{"empty scope", "sign/nothing", good, "service"},
		{"other service", "sign/signer", with(good, "service", "s3"), "service"},
		{"other region", "sign/signer", with(good, "region", "us-east-1"), "region"},
		{"other host", "sign/signer", with(good, "url", "https://sts.amazonaws.com/"), "url"},
	}
	for _, tt := range forbiddenCases {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, tt.path, tt.data)
			if status(resp, err) != http.StatusForbidden || !strings.Contains(errText(resp, err), tt.wantField) {
				t.Fatalf("got %v %v, want 403 naming %s", err, resp, tt.wantField)
			}
		})
	}
	badCases := []struct {
		name      string
		data      map[string]any
		wantField string
	}{
		{"no url", with(good, "url", nil), "url"},
		{"relative url", with(good, "url", "/path"), "url"},
		{"no service", with(good, "service", nil), "service"},
		{"bad method", with(good, "method", "GE T"), "method"},
		{"bad region", with(good, "region", "moon"), "region"},
		{"body not base64", with(good, "body", "!!"), "body"},
		{"body and hash", with(good, "payload_hash", strings.Repeat("a", 64)), "payload_hash"},
		{"bad hash", with(good, "body", nil, "payload_hash", "xyz"), "payload_hash"},
		{"reserved header", with(good, "headers", map[string]any{"Authorization": "x"}), "headers"},
		{"bad header name", with(good, "headers", map[string]any{"bad header": "x"}), "headers"},
		{"expires without presign", with(good, "expires", "1h"), "expires"},
		{"expires too long", with(good, "presign", true, "expires", "8d"), "expires"},
	}
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, "sign/signer", tt.data)
			if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tt.wantField) {
				t.Fatalf("got %v %v, want a 400 naming %s", err, resp, tt.wantField)
			}
		})
	}

	// The signed request goes to the peer unchanged and is accepted.
	resp := e.mustWrite(t, "sign/signer", good)
	headers := resp.Data["headers"].(map[string]any)
	req, _ := http.NewRequest(http.MethodPost, resp.Data["url"].(string), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v.(string))
	}
	httpResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusOK {
		t.Fatalf("peer answered %d to the signed request", httpResp.StatusCode)
	}
	if resp.Data["signed_headers"] != "content-length;content-type;host;x-amz-date" {
		t.Fatalf("signed headers %v", resp.Data["signed_headers"])
	}
	_ = host

	// Presigned GetCallerIdentity works too.
	resp = e.mustWrite(t, "sign/signer", map[string]any{"url": e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts", "presign": true, "expires": "5m"})
	httpResp, err = http.Get(resp.Data["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusOK {
		t.Fatalf("peer answered %d to the presigned URL", httpResp.StatusCode)
	}
}

// recordingKey notes every message the key store is asked to HMAC.
type recordingKey struct {
	storeKey
	mu   sync.Mutex
	msgs []string
}

func (k *recordingKey) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	k.mu.Lock()
	k.msgs = append(k.msgs, string(msg))
	k.mu.Unlock()
	return k.storeKey.HMAC(ctx, msg)
}

func (k *recordingKey) KeyIdentity() string { return "recording" }

// The key store is asked for today's UTC date and nothing else, once per
// region and service, however many credentials and signatures follow.
func TestKeyStoreSeesOnlyTodaysDate(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token", "allowed_services": "sts,s3", "allowed_regions": "*", "allowed_hosts": "*"})
	key, _, _, err := e.b.client(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingKey{storeKey: key}
	e.b.lock.Lock()
	e.b.key = rec
	e.b.signer = sigv4.NewSigner()
	e.b.sts, err = newSTSClient(&pluginConfig{Region: "eu-west-3", STSEndpoint: e.peer.URL}, rec, e.b.signer)
	e.b.lock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if resp, err := e.request(t, logical.ReadOperation, "creds/session", nil); err != nil || resp.IsError() {
			t.Fatal(err, resp)
		}
		e.mustWrite(t, "sign/session", map[string]any{"url": "https://bucket.s3.eu-west-3.amazonaws.com/k", "service": "s3"})
		e.mustWrite(t, "sign/session", map[string]any{"url": "https://sts.us-west-2.amazonaws.com/", "service": "sts", "region": "us-west-2"})
	}
	today := time.Now().UTC().Format("20060102")
	if len(rec.msgs) != 3 {
		t.Fatalf("key store asked %d times for 3 scopes: %q", len(rec.msgs), rec.msgs)
	}
	for _, m := range rec.msgs {
		if m != today {
			t.Fatalf("key store asked to HMAC %q, not today's date %s", m, today)
		}
	}
}
