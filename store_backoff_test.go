package awshmac

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// fakeClock is the back-off's clock in tests: no test waits for a window.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// backoffEnv is a testEnv whose server log is kept, whose back-off runs on
// a fake clock, and whose key-store opens are counted through the
// backend's opener seam around the real store.
type backoffEnv struct {
	*testEnv
	log   *lockedBuffer
	clock *fakeClock
	opens atomic.Int32
	hmacs atomic.Int32
}

func newBackoffEnv(t *testing.T) *backoffEnv {
	t.Helper()
	logs := &lockedBuffer{}
	config := logical.TestBackendConfig()
	config.StorageView = &logical.InmemStorage{}
	config.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
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
	kek := filepath.Join(t.TempDir(), "kek.json")
	if err := tink.NewLocalKEK(kek); err != nil {
		t.Fatal(err)
	}
	e := &backoffEnv{testEnv: &testEnv{b: b.(*backend), storage: config.StorageView, peer: peer, kekPath: kek},
		log: logs, clock: &fakeClock{now: time.Now()}}
	e.b.stores.gate.now = e.clock.Now
	e.b.stores.open = func(ctx context.Context, cfg *pluginConfig) (storeKey, error) {
		e.opens.Add(1)
		k, err := cfg.store.open(ctx, cfg.AccessKey)
		if err != nil {
			return nil, err
		}
		return &countingKey{storeKey: k, calls: &e.hmacs}, nil
	}
	return e
}

// countingKey counts the HMACs that reach the real store.
type countingKey struct {
	storeKey
	calls *atomic.Int32
}

func (k *countingKey) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	k.calls.Add(1)
	return k.storeKey.HMAC(ctx, msg)
}

func (k *countingKey) Refresh(ctx context.Context) error {
	if r, ok := k.storeKey.(refresher); ok {
		return r.Refresh(ctx)
	}
	return nil
}

const signerRole = "roles/signer"

func (e *backoffEnv) addSigner(t *testing.T) {
	t.Helper()
	e.mustWrite(t, signerRole, map[string]any{"sign_with": "key", "allowed_services": "sts",
		"allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
}

// sign asks for one signature and returns its status and the whole answer
// as text, for the secret search.
func (e *backoffEnv) sign(t *testing.T) (int, string) {
	t.Helper()
	resp, err := e.request(t, logical.UpdateOperation, "sign/signer", map[string]any{
		"url": "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"})
	return status(resp, err), errText(resp, err) + fmt.Sprint(resp)
}

// readConfig returns the config read's data and warnings as text.
func (e *backoffEnv) readConfig(t *testing.T) (map[string]any, string) {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "config", nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("config read: %v %v", resp, err)
	}
	return resp.Data, fmt.Sprint(resp.Data, resp.Warnings)
}

// refusedInWindow sends n sign requests in the back-off window and checks
// each answers 503 naming the store, the credential field, and when it is
// asked again.
func (e *backoffEnv) refusedInWindow(t *testing.T, n int, store, field string) string {
	t.Helper()
	var all strings.Builder
	for i := range n {
		code, text := e.sign(t)
		all.WriteString(text)
		want := "the " + store + " key store refused the plugin's credential (" + field + ")"
		if code != http.StatusServiceUnavailable || !strings.Contains(text, want) || !strings.Contains(text, "not asked again until") {
			t.Fatalf("request %d in the window: %d %q, want 503 with %q and the retry time", i, code, text, want)
		}
	}
	return all.String()
}

// noSecrets fails if any secret shows in text.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("%s shows a secret of length %d", what, len(s))
		}
	}
}

func backoffLines(log string) int {
	return strings.Count(log, "refused the plugin's credential; backing off")
}

// changePIN changes the token's user PIN from another process, behind the
// plugin's back, as an operator with the token's tools would.
func changePIN(t *testing.T, hsm *testenv.SoftHSM, oldPIN, newPIN string) {
	t.Helper()
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("pkcs11-tool (Debian package opensc) is needed")
		}
		t.Skip("pkcs11-tool (Debian package opensc) is not installed")
	}
	cmd := exec.Command(tool, "--module", hsm.Module, "--token-label", hsm.Label, "--login",
		"--pin", oldPIN, "--change-pin", "--new-pin", newPIN)
	cmd.Env = append(cmd.Environ(), hsm.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool --change-pin: %v (%d bytes of output)", err, len(out))
	}
}

// A token whose user PIN changed behind the plugin's back is logged into
// once, not on every request: the requests that follow answer 503 saying
// the store refused pkcs11_pin and when it is tried again, without reaching
// the token; the config read says why; the next try waits longer; a config
// write with the new PIN ends it at once. No PIN shows anywhere.
func TestPKCS11WrongPINBacksOff(t *testing.T) {
	e := newBackoffEnv(t)
	hsm := testenv.NewSoftHSM(t, "aws-hmac")
	e.b.env.pkcs11Modules = append(e.b.env.pkcs11Modules, hsm.Module)
	cfg := with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "pkcs11",
		"pkcs11_module", hsm.Module, "pkcs11_token_label", hsm.Label, "pkcs11_pin", hsm.PIN)
	e.mustWrite(t, "config", cfg)
	e.addSigner(t)
	if code, text := e.sign(t); code != http.StatusOK {
		t.Fatalf("sign with the right PIN: %d %s", code, text)
	}
	newPIN := "pin2-" + hsm.PIN
	changePIN(t, hsm, hsm.PIN, newPIN)
	// A reload (or another node's write) makes the plugin log in again.
	e.b.InvalidateKey(context.Background(), configStoragePath)
	before := e.opens.Load()

	answers := e.refusedInWindow(t, 10, "pkcs11", "pkcs11_pin")
	if got := e.opens.Load() - before; got != 1 {
		t.Fatalf("10 requests reached the token %d times, want 1 login", got)
	}
	data, read := e.readConfig(t)
	if r, _ := data["key_store_refused"].(string); !strings.Contains(r, "wrong PIN") || !strings.Contains(r, "CKR_PIN_INCORRECT") {
		t.Fatalf("config read does not say why: %s", read)
	}
	firstRetry, _ := time.Parse(time.RFC3339, data["key_store_retry_at"].(string))
	if n := backoffLines(e.log.String()); n != 1 {
		t.Fatalf("%d back-off log lines for one refusal, want 1", n)
	}

	// Past the window, one try; refused again, the next window is longer.
	e.clock.Set(firstRetry.Add(time.Second))
	e.refusedInWindow(t, 5, "pkcs11", "pkcs11_pin")
	if got := e.opens.Load() - before; got != 2 {
		t.Fatalf("after the window the token was reached %d times in all, want 2", got)
	}
	data, _ = e.readConfig(t)
	secondRetry, _ := time.Parse(time.RFC3339, data["key_store_retry_at"].(string))
	if data["key_store_refusals"] != 2 || secondRetry.Sub(e.clock.Now()) <= authBackoffMin {
		t.Fatalf("second refusal: %v refusals, next try in %s; want 2 and a longer wait", data["key_store_refusals"], secondRetry.Sub(e.clock.Now()))
	}

	// A config write giving the new PIN resets it at once.
	e.mustWrite(t, "config", map[string]any{"pkcs11_pin": newPIN})
	if code, text := e.sign(t); code != http.StatusOK {
		t.Fatalf("sign after the write: %d %s", code, text)
	}
	if data, read := e.readConfig(t); data["key_store_refused"] != nil {
		t.Fatalf("config read after the write still reports a refusal: %s", read)
	}
	noSecrets(t, "answers, config reads and the server log", answers+read+e.log.String(), hsm.PIN, newPIN, hsm.SOPIN, keytest.Secret)
}

// transitBackoffWorld is a real Vault whose transit key the plugin uses
// with a token of its own, which the test revokes.
func transitBackoffWorld(t *testing.T, e *backoffEnv) (*testenv.Vault, string) {
	t.Helper()
	v := testenv.StartVault(t, testenv.VaultOptions{})
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if err := v.Client.Sys().PutPolicy("aws-hmac", `path "transit/*" { capabilities = ["create", "read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	s, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"aws-hmac"}, TTL: "1h", NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	token := s.Auth.ClientToken
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "transit",
		"transit_address", v.Addr, "transit_token", token))
	return v, token
}

// A revoked transit token is presented once, not on every request, both
// while the engine is open (HMAC) and when it is opened again (key read);
// a config write with a new token resets it. No token shows anywhere.
func TestTransitRevokedTokenBacksOff(t *testing.T) {
	e := newBackoffEnv(t)
	v, token := transitBackoffWorld(t, e)
	e.addSigner(t)
	// The engine is opened through the counting seam, and signs nothing yet:
	// a derived key cached for today would spare transit the next request.
	e.b.InvalidateKey(context.Background(), configStoragePath)
	e.engine(t)
	if err := v.Client.Auth().Token().RevokeOrphan(token); err != nil {
		t.Fatal(err)
	}
	hmacs := e.hmacs.Load()
	answers := e.refusedInWindow(t, 10, "transit", "transit_token")
	if got := e.hmacs.Load() - hmacs; got != 1 {
		t.Fatalf("10 requests asked transit %d times, want 1", got)
	}
	data, read := e.readConfig(t)
	if r, _ := data["key_store_refused"].(string); !strings.Contains(r, "HTTP 403") {
		t.Fatalf("config read does not say why: %s", read)
	}

	// Opened again (a reload): one key read, then the window.
	e.b.InvalidateKey(context.Background(), configStoragePath)
	opens := e.opens.Load()
	answers += e.refusedInWindow(t, 10, "transit", "transit_token")
	if got := e.opens.Load() - opens; got != 1 {
		t.Fatalf("10 requests opened the transit key %d times, want 1", got)
	}
	if n := backoffLines(e.log.String()); n != 2 {
		t.Fatalf("%d back-off log lines for two refusals, want 2", n)
	}

	s, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"aws-hmac"}, TTL: "1h", NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	e.mustWrite(t, "config", map[string]any{"transit_token": s.Auth.ClientToken})
	if code, text := e.sign(t); code != http.StatusOK {
		t.Fatalf("sign after the write: %d %s", code, text)
	}
	_, after := e.readConfig(t)
	noSecrets(t, "answers, config reads and the server log", answers+read+after+e.log.String(), token, s.Auth.ClientToken, v.Token, keytest.Secret)
}

// The wait doubles from authBackoffMin and never passes authBackoffMax,
// jitter included.
func TestBackoffDelayBounds(t *testing.T) {
	prevMax := time.Duration(0)
	for n := 1; n <= 40; n++ {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 200 {
			d := backoffDelay(n)
			lo, hi = min(lo, d), max(hi, d)
		}
		want := authBackoffMax
		if n < 20 {
			want = min(authBackoffMin<<(n-1), authBackoffMax)
		}
		if hi > want || lo < want-want/5 || hi < prevMax-prevMax/5 {
			t.Fatalf("after %d refusals: waits %s..%s, want %s less at most a fifth", n, lo, hi, want)
		}
		prevMax = want
	}
}

// A Tink keyset whose hcvault:// KEK's token was revoked: opening the key
// asks the KEK's Vault once for ten requests, then the window; a config
// write with a new token resets it. No token shows anywhere.
func TestTinkKEKTokenRevokedBacksOff(t *testing.T) {
	e := newBackoffEnv(t)
	v := testenv.StartVault(t, testenv.VaultOptions{})
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().Write("transit/keys/kek", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	newToken := func() string {
		s, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{TTL: "1h", NoParent: true})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}
	token := newToken()
	uri := "hcvault://" + strings.TrimPrefix(v.Addr, "http://") + "/transit/keys/kek"
	e.b.env.kekURIs = append(e.b.env.kekURIs, uri)
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", uri, "tink_vault_address", v.Addr, "tink_vault_token", token))
	e.addSigner(t)
	if err := v.Client.Auth().Token().RevokeOrphan(token); err != nil {
		t.Fatal(err)
	}
	e.b.InvalidateKey(context.Background(), configStoragePath)
	opens := e.opens.Load()
	answers := e.refusedInWindow(t, 10, "tink", "tink_vault_token")
	if got := e.opens.Load() - opens; got != 1 {
		t.Fatalf("10 requests asked the KEK %d times, want 1", got)
	}
	data, read := e.readConfig(t)
	if r, _ := data["key_store_refused"].(string); !strings.Contains(r, "KMS refused") {
		t.Fatalf("config read does not say why: %s", read)
	}
	fresh := newToken()
	e.mustWrite(t, "config", map[string]any{"tink_vault_token": fresh})
	if code, text := e.sign(t); code != http.StatusOK {
		t.Fatalf("sign after the write: %d %s", code, text)
	}
	noSecrets(t, "answers, config reads and the server log", answers+read+e.log.String(), token, fresh, v.Token, keytest.Secret)
}
