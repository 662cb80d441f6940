package awshmac

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

const testRoleARN = "arn:aws:iam::123456789012:role/deploy"

type testEnv struct {
	sys     *logical.StaticSystemView
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
	// The tests' Tink KEK is the cleartext local one: allowed, as in development.
	b, err := factory(context.Background(), config, func(name string) string {
		return map[string]string{envAllowInsecure: "1"}[name]
	})
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
	sys, _ := config.System.(*logical.StaticSystemView)
	return &testEnv{sys: sys, b: b.(*backend), storage: config.StorageView, peer: peer, kekPath: kek}
}

func (e *testEnv) request(t *testing.T, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage, DisplayName: "token-test"}
	if op == logical.UpdateOperation || op == logical.CreateOperation {
		checkFound, exists, err := e.b.HandleExistenceCheck(context.Background(), req)
		var userErr errutil.UserError
		if errors.As(err, &userErr) {
			return logical.ErrorResponse(userErr.Err), nil // as Vault answers it
		}
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
		"tink_kek_uri": tink.LocalKEKScheme + e.kekPath, "sts_endpoint": e.peer.URL, "iam_endpoint": e.peer.URL, "region": "eu-west-3",
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

// engine returns the engine the backend uses, building it if need be.
func (e *testEnv) engine(t *testing.T) *engine {
	t.Helper()
	var got *engine
	if err := e.b.withEngine(context.Background(), e.storage, func(en *engine) error { got = en; return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// installKey opens the configured key afresh and installs an engine around
// wrap(key), as a config write would.
func (e *testEnv) installKey(t *testing.T, wrap func(storeKey) storeKey) {
	t.Helper()
	cfg, err := e.b.config(context.Background(), e.storage)
	if err != nil || cfg == nil {
		t.Fatalf("config: %v %v", cfg, err)
	}
	key, err := cfg.store.open(context.Background(), cfg.AccessKey)
	if err != nil {
		t.Fatal(err)
	}
	en, err := e.b.newEngine(cfg, reportingKey{storeKey: wrap(key), store: cfg.KeyStore})
	if err != nil {
		t.Fatal(err)
	}
	e.b.install(en)
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

func (k *recordingKey) calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.msgs)
}

// The key store is asked for today's UTC date and nothing else, once per
// key and day, however many credentials and signatures follow and
// whatever their regions and services.
func TestKeyStoreSeesOnlyTodaysDate(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	services := "*"
	for s := range 20 {
		services += fmt.Sprintf(",svc%d", s) // services no model knows are signed only when named
	}
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": services, "allowed_regions": "*", "allowed_hosts": "*"})
	e.mustWrite(t, "roles/sts", map[string]any{"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	var rec *recordingKey
	e.installKey(t, func(k storeKey) storeKey { rec = &recordingKey{storeKey: k}; return rec })
	for i := 0; i < 3; i++ {
		if resp, err := e.request(t, logical.ReadOperation, "creds/session", nil); err != nil || resp.IsError() {
			t.Fatal(err, resp)
		}
		e.mustWrite(t, "sign/session", map[string]any{"url": "https://bucket.s3.eu-west-3.amazonaws.com/k", "service": "s3"})
		e.mustWrite(t, "sign/sts", map[string]any{"url": "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts", "region": "us-west-2"})
	}
	// 50 regions × 20 services: still the one call.
	for r := range 50 {
		for s := range 20 {
			e.mustWrite(t, "sign/session", map[string]any{"url": "https://example.com/", "service": fmt.Sprintf("svc%d", s), "region": fmt.Sprintf("xx-test-%d", r+1)})
		}
	}
	today := time.Now().UTC().Format("20060102")
	if rec.calls() != 1 {
		t.Fatalf("key store asked %d times on one day: %q", rec.calls(), rec.msgs)
	}
	for _, m := range rec.msgs {
		if m != today {
			t.Fatalf("key store asked to HMAC %q, not today's date %s", m, today)
		}
	}
}
