package awshmac

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

// rotationEnv is a configured engine whose IAM user is "vault" at the peer.
func rotationEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	e.mustWrite(t, "config", with(e.baseConfig(), "old_key_grace", "2s"))
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	return e
}

// works reports whether the configured key mints credentials the peer takes.
func works(t *testing.T, e *testEnv) bool {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "creds/session", nil)
	if err != nil || resp == nil || resp.IsError() {
		return false
	}
	return callerIdentity(t, e.peer, resp.Data) == "arn:aws:iam::123456789012:user/vault"
}

// keyWorks asks the peer directly whether an access key and secret work.
func keyWorks(e *testEnv, id, secret string) bool {
	client := sts.New(sts.Options{Region: "eu-west-3", BaseEndpoint: aws.String(e.peer.URL), RetryMaxAttempts: 1,
		HTTPClient: testHTTPClient, Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	_, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	return err == nil
}

func configuredKey(t *testing.T, e *testEnv) string {
	t.Helper()
	cfg, err := e.b.config(context.Background(), e.storage)
	if err != nil || cfg == nil {
		t.Fatal(err)
	}
	return cfg.AccessKey
}

func walCount(t *testing.T, e *testEnv) int {
	t.Helper()
	ids, err := framework.ListWAL(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// exactlyOne: one working key is configured and IAM holds no other.
func exactlyOne(t *testing.T, e *testEnv) {
	t.Helper()
	key := configuredKey(t, e)
	if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 1 || ids[0] != key {
		t.Fatalf("IAM holds %v, the config names %s", ids, key)
	}
	if !works(t, e) {
		t.Fatal("the configured key does not work")
	}
}

// The old key cannot be deleted: the rotation succeeds with a warning and
// its log; the rollback, or the next rotation, deletes the old key.
func TestRotationOldKeyDeleteFails(t *testing.T) {
	for _, recover := range []string{"rollback", "next rotation"} {
		t.Run(recover, func(t *testing.T) {
			e := rotationEnv(t)
			e.peer.InjectFault(ststest.Fault{Action: "DeleteAccessKey", Code: "ServiceFailure", Message: "down", Status: 500, Count: 5})
			resp := e.mustWrite(t, "config/rotate-root", nil)
			if len(resp.Warnings) == 0 || walCount(t, e) != 1 || len(e.peer.AccessKeyIDs("vault")) != 2 {
				t.Fatalf("warnings %v, log %d, IAM %v", resp.Warnings, walCount(t, e), e.peer.AccessKeyIDs("vault"))
			}
			e.recover(t, recover)
			exactlyOne(t, e)
			if walCount(t, e) != 0 {
				t.Fatal("log left after recovery")
			}
		})
	}
}

// A crash between every two steps, then the rollback or the next rotation.
// After "created" the log does not name the new key yet: the replay finds
// it by the user and the logged window.
func TestRotationCrashes(t *testing.T) {
	for _, step := range []string{"logged", "created", "imported", "verified", "switched"} {
		for _, recover := range []string{"rollback", "next rotation"} {
			t.Run(step+"/"+recover, func(t *testing.T) {
				e := rotationEnv(t)
				e.b.rotationHook = func(s string) bool { return s == step }
				resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
				if err == nil && (resp == nil || !resp.IsError()) {
					t.Fatalf("the crash did not stop the rotation: %v", resp)
				}
				e.b.rotationHook = nil
				e.recover(t, recover)
				exactlyOne(t, e)
				if walCount(t, e) != 0 {
					t.Fatal("log left after recovery")
				}
			})
		}
	}
}

// recover replays the log: as the framework's rollback does, or by rotating.
func (e *testEnv) recover(t *testing.T, how string) {
	t.Helper()
	if how == "next rotation" {
		e.mustWrite(t, "config/rotate-root", nil)
		return
	}
	ids, _ := framework.ListWAL(context.Background(), e.storage)
	for _, id := range ids {
		entry, err := framework.GetWAL(context.Background(), e.storage, id)
		if err != nil {
			t.Fatal(err)
		}
		req := &logical.Request{Storage: e.storage}
		if err := e.b.walRollback(context.Background(), req, entry.Kind, entry.Data); err != nil {
			t.Fatal(err)
		}
		_ = framework.DeleteWAL(context.Background(), e.storage, id)
	}
}

func (e *testEnv) kekAway(t *testing.T) {
	if err := renameIfExists(e.kekPath, e.kekPath+".away"); err != nil {
		t.Error(err)
	}
}

func (e *testEnv) kekBack(t *testing.T) {
	if err := renameIfExists(e.kekPath+".away", e.kekPath); err != nil {
		t.Error(err)
	}
}

// Twenty rotations while 8 callers sign and mint: no request fails, and
// every credential and signature works at the peer when it is returned.
func TestRotationsUnderLoad(t *testing.T) {
	e := rotationEnv(t)
	e.mustWrite(t, "roles/signer", map[string]any{"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	url := e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	var stop atomic.Bool
	var done atomic.Int64
	var wg sync.WaitGroup
	failures := make(chan string, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if msg := oneCall(t, e, i%2 == 0, url); msg != "" {
					failures <- msg
					return
				}
				done.Add(1)
			}
		}()
	}
	seen := map[string]bool{}
	for range 20 {
		resp := e.mustWrite(t, "config/rotate-root", nil)
		seen[resp.Data["access_key"].(string)] = true
	}
	stop.Store(true)
	wg.Wait()
	close(failures)
	for msg := range failures {
		t.Error(msg)
	}
	if len(seen) != 20 || done.Load() == 0 {
		t.Fatalf("%d distinct keys, %d calls", len(seen), done.Load())
	}
	exactlyOne(t, e)
}

// oneCall mints or signs once and checks the result at the peer at once.
func oneCall(t *testing.T, e *testEnv, mint bool, url string) string {
	if mint {
		resp, err := e.request(t, logical.ReadOperation, "creds/session", nil)
		if msg := errText(resp, err); msg != "" {
			return "creds/: " + msg
		}
		if !keyWorks(e, resp.Data["access_key"].(string), resp.Data["secret_key"].(string)) && !tokenWorks(e, resp.Data) {
			return "credentials refused by the peer"
		}
		return ""
	}
	resp, err := e.request(t, logical.UpdateOperation, "sign/signer", map[string]any{"url": url, "service": "sts"})
	if msg := errText(resp, err); msg != "" {
		return "sign/: " + msg
	}
	req, _ := http.NewRequest(http.MethodGet, resp.Data["url"].(string), nil)
	for k, v := range resp.Data["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	got.Body.Close()
	if got.StatusCode != http.StatusOK {
		return "signature refused by the peer"
	}
	return ""
}

func tokenWorks(e *testEnv, data map[string]any) bool {
	client := sts.New(sts.Options{Region: "eu-west-3", BaseEndpoint: aws.String(e.peer.URL), RetryMaxAttempts: 1,
		HTTPClient: testHTTPClient, Credentials: credentials.NewStaticCredentialsProvider(data["access_key"].(string), data["secret_key"].(string), data["session_token"].(string))})
	_, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	return err == nil
}

// testHTTPClient is shared by the tests' SDK clients, so connections are reused.
var testHTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

func renameIfExists(from, to string) error {
	if _, err := os.Stat(from); err != nil {
		return nil
	}
	return os.Rename(from, to)
}

// On a PKCS#11 token, a crash between every two steps, then the rollback:
// the token holds exactly the configured key's object, no orphan.
func TestRotationCrashesPKCS11(t *testing.T) {
	for _, step := range []string{"created", "imported", "verified", "switched"} {
		t.Run(step, func(t *testing.T) {
			e := newTestEnv(t)
			fields := e.storeConfig(t, "pkcs11")
			e.mustWrite(t, "config", with(fields, "iam_endpoint", e.peer.URL, "old_key_grace", "1s"))
			e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
			e.b.rotationHook = func(s string) bool { return s == step }
			if resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil); err == nil && !resp.IsError() {
				t.Fatal("the crash did not stop the rotation")
			}
			e.b.rotationHook = nil
			e.recover(t, "rollback")
			exactlyOne(t, e)
			labels := tokenKeyLabels(t, fields)
			if want := "aws-hmac-" + configuredKey(t, e); len(labels) != 1 || labels[0] != want {
				t.Fatalf("token holds %v, want only %s", labels, want)
			}
		})
	}
}

// tokenKeyLabels lists the secret-key objects on the test token.
func tokenKeyLabels(t *testing.T, fields map[string]any) []string {
	t.Helper()
	out, err := exec.Command("pkcs11-tool", "--module", fields["pkcs11_module"].(string), "--token-label", fields["pkcs11_token_label"].(string),
		"--login", "--pin", fields["pkcs11_pin"].(string), "--list-objects", "--type", "secrkey").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	var labels []string
	for _, line := range strings.Split(string(out), "\n") {
		if l, ok := strings.CutPrefix(strings.TrimSpace(line), "label:"); ok {
			labels = append(labels, strings.TrimSpace(l))
		}
	}
	return labels
}

// transitRotationEnv is the engine on a real Vault's transit, the key
// imported through the plugin, ready to rotate.
func transitRotationEnv(t *testing.T) (*testEnv, *transitWorld) {
	t.Helper()
	e := newTestEnv(t)
	w := newTransitWorld(t, e)
	e.mustWrite(t, "config", map[string]any{"old_key_grace": "1s"})
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	return e, w
}

// wrappingKeyDigest is SHA-256 of the DER transit/wrapping_key sends,
// computed apart from the plugin.
func wrappingKeyDigest(t *testing.T, c *api.Client) string {
	t.Helper()
	s, err := c.Logical().Read("transit/wrapping_key")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(s.Data["public_key"].(string)))
	if block == nil {
		t.Fatal("wrapping key is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// recreateTransit replaces the transit mount behind the plugin's back: a
// new mount has a new wrapping key. The plugin's key is restored in it, so
// only the wrapping key differs.
func (w *transitWorld) recreateTransit(t *testing.T) {
	t.Helper()
	c := w.vault.Client
	if err := c.Sys().Unmount("transit"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := transit.Import(context.Background(), transit.Config{Client: c, Name: w.keyName}, keytest.AccessKeyID, keytest.Secret); err != nil {
		t.Fatal(err)
	}
}

func storedConfig(t *testing.T, e *testEnv) string {
	t.Helper()
	entry, err := e.storage.Get(context.Background(), configStoragePath)
	if err != nil || entry == nil {
		t.Fatal("no stored config", err)
	}
	return string(entry.Value)
}

// A rotation wraps the new secret only for the wrapping key recorded at the
// first import: against a transit re-created behind the plugin's back it is
// refused before IAM makes a key, or, when transit changes after
// CreateAccessKey, the new key is deleted again. The config stays as it was.
func TestRotationTransitWrappingKeyChanged(t *testing.T) {
	for _, when := range []string{"before rotation", "after CreateAccessKey", "before scheduled rotation"} {
		t.Run(when, func(t *testing.T) {
			e, w := transitRotationEnv(t)
			resp, _ := e.request(t, logical.ReadOperation, "config", nil)
			if got := resp.Data["transit_wrapping_key_fingerprint"]; got != wrappingKeyDigest(t, w.vault.Client) {
				t.Fatalf("transit_wrapping_key_fingerprint %v, transit's key %s", got, wrappingKeyDigest(t, w.vault.Client))
			}
			if when == "before scheduled rotation" {
				makeDue(t, e)
			}
			stored := storedConfig(t, e)
			if when == "after CreateAccessKey" {
				e.b.rotationHook = func(step string) bool {
					if step == "created" {
						w.recreateTransit(t)
					}
					return false
				}
			} else {
				w.recreateTransit(t)
			}
			if when == "before scheduled rotation" {
				e.b.rotateIfDue(context.Background(), e.storage)
			} else {
				resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
				if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "transit wrapping key changed") {
					t.Fatalf("got %d %q", status(resp, err), errText(resp, err))
				}
			}
			if storedConfig(t, e) != stored || walCount(t, e) != 0 {
				t.Fatalf("config changed or log left (%d)", walCount(t, e))
			}
			if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 1 || ids[0] != keytest.AccessKeyID {
				t.Fatalf("IAM holds %v", ids)
			}
			if created := calls(e.peer, "CreateAccessKey"); (when == "after CreateAccessKey") != (created == 1) {
				t.Fatalf("%d CreateAccessKey calls", created)
			}
			if !works(t, e) {
				t.Fatal("the configured key no longer works")
			}
		})
	}
}

// makeDue sets the schedule so that the periodic function rotates now.
func makeDue(t *testing.T, e *testEnv) {
	t.Helper()
	e.mustWrite(t, "config", map[string]any{"rotation_period": "1h"})
	cfg, err := e.b.config(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	due, _ := cfg.clone()
	due.RotationBase = time.Now().Add(-2 * time.Hour)
	if err := e.b.putConfig(context.Background(), e.storage, due); err != nil {
		t.Fatal(err)
	}
}

// A config from before the fingerprint existed records it at the next
// import, and later rotations keep checking it.
func TestRotationTransitRecordsWrappingKey(t *testing.T) {
	e, w := transitRotationEnv(t)
	var fields map[string]any
	if err := json.Unmarshal([]byte(storedConfig(t, e)), &fields); err != nil {
		t.Fatal(err)
	}
	delete(fields, "transit_wrapping_key_fingerprint")
	entry, _ := logical.StorageEntryJSON(configStoragePath, fields)
	if err := e.storage.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	e.b.dropConfig()
	resp, _ := e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["transit_wrapping_key_fingerprint"] != "" {
		t.Fatalf("an old config shows %v", resp.Data["transit_wrapping_key_fingerprint"])
	}
	e.mustWrite(t, "config/rotate-root", nil)
	resp, _ = e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["transit_wrapping_key_fingerprint"] != wrappingKeyDigest(t, w.vault.Client) {
		t.Fatalf("after the rotation: %v", resp.Data["transit_wrapping_key_fingerprint"])
	}
	e.mustWrite(t, "config/rotate-root", nil)
	exactlyOne(t, e)
}

// calls counts the authentic requests of one action the peer served.
func calls(peer *ststest.Server, action string) int {
	n := 0
	for _, c := range peer.Calls() {
		if c.Action == action {
			n++
		}
	}
	return n
}

// A log that does not name its new key deletes only a key it can prove the
// rotation made: the configured user's, created within the logged window.
// Anything else is kept, with a warning.
func TestRotationReplayKeepsKeysItDidNotMake(t *testing.T) {
	tests := []struct {
		name   string
		crash  func(t *testing.T, e *testEnv) (kept string)
		reason string
	}{
		{"administrator's key after the window", func(t *testing.T, e *testEnv) string {
			crashAt(t, e, "logged")
			id, _ := e.peer.AddUserKeyAt("vault", time.Now().Add(30*time.Minute))
			return id
		}, "outside the rotation's window"},
		{"administrator's key before the window", func(t *testing.T, e *testEnv) string {
			crashAt(t, e, "logged")
			id, _ := e.peer.AddUserKeyAt("vault", time.Now().Add(-time.Hour))
			return id
		}, "outside the rotation's window"},
		{"config now another user's", func(t *testing.T, e *testEnv) string {
			crashAt(t, e, "logged")
			id, secret := e.peer.AddUser("other")
			e.mustWrite(t, "config", map[string]any{"access_key": id, "secret_key": secret, "tink_keyset": ""})
			second, _ := e.peer.AddUserKeyAt("other", time.Now()) // inside the window
			return second
		}, "not to arn:aws:iam::123456789012:user/vault"},
		{"log from an older version", func(t *testing.T, e *testEnv) string {
			old := map[string]any{"old_access_key": keytest.AccessKeyID, "old_store": map[string]any{}}
			if _, err := framework.PutWAL(context.Background(), e.storage, walRotateRoot, old); err != nil {
				t.Fatal(err)
			}
			id, _ := e.peer.AddUserKeyAt("vault", time.Now())
			return id
		}, "older version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := rotationEnv(t)
			kept := tt.crash(t, e)
			warnings, err := e.b.replayRotations(context.Background(), e.storage)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], kept) || !strings.Contains(warnings[0], tt.reason) {
				t.Fatalf("warnings %q, want one naming %s: %s", warnings, kept, tt.reason)
			}
			if !slices.Contains(e.peer.AccessKeyIDs(userOf(kept, e)), kept) || walCount(t, e) != 0 {
				t.Fatalf("the key %s was deleted, or the log left (%d)", kept, walCount(t, e))
			}
			if key := configuredKey(t, e); !slices.Contains(e.peer.AccessKeyIDs(userOf(key, e)), key) {
				t.Fatal("the configured key was deleted")
			}
		})
	}
}

// crashAt stops a rotation after step, as a crash would.
func crashAt(t *testing.T, e *testEnv, step string) {
	t.Helper()
	e.b.rotationHook = func(s string) bool { return s == step }
	defer func() { e.b.rotationHook = nil }()
	if resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil); err == nil && !resp.IsError() {
		t.Fatal("the crash did not stop the rotation")
	}
}

// userOf is the peer's user that holds a key: vault or other.
func userOf(id string, e *testEnv) string {
	if slices.Contains(e.peer.AccessKeyIDs("other"), id) {
		return "other"
	}
	return "vault"
}

// A crash during CreateAccessKey after IAM made the key: the next rotation
// finds it by the user and window, deletes it, and rotates.
func TestRotationReplayDeletesItsUnnamedKey(t *testing.T) {
	e := rotationEnv(t)
	crashAt(t, e, "created")
	if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 2 || walCount(t, e) != 1 {
		t.Fatalf("after the crash: IAM %v, log %d", ids, walCount(t, e))
	}
	resp := e.mustWrite(t, "config/rotate-root", nil)
	if len(resp.Warnings) != 0 {
		t.Fatalf("warnings: %v", resp.Warnings)
	}
	exactlyOne(t, e)
	if walCount(t, e) != 0 {
		t.Fatal("log left")
	}
}

// The old key's grace holds no lock: during it a config read, a config
// write and an engine build each finish before the rotation returns; the
// old key is deleted after the grace, unless a write in the meantime
// pointed the config back at it.
func TestRotationGraceHoldsNoLock(t *testing.T) {
	for _, write := range []string{"another setting", "back to the old key"} {
		t.Run(write, func(t *testing.T) {
			e := rotationEnv(t)
			e.mustWrite(t, "config", map[string]any{"old_key_grace": "3s"})
			old, _ := e.b.config(context.Background(), e.storage)
			rotated := rotateUntilSwitched(t, e)
			if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 2 {
				t.Fatalf("IAM holds %v during the grace", ids)
			}
			stillRotating := func(what string) {
				select {
				case <-rotated:
					t.Fatalf("the %s finished only after the rotation", what)
				default:
				}
			}
			if resp, err := e.request(t, logical.ReadOperation, "config", nil); status(resp, err) != http.StatusOK {
				t.Fatalf("config read: %v %v", err, resp)
			}
			stillRotating("config read")
			data := map[string]any{"max_retries": 2}
			if write == "back to the old key" {
				data = map[string]any{"access_key": old.AccessKey, "tink_keyset": old.store.(*tinkParams).Keyset}
			}
			e.mustWrite(t, "config", data)
			stillRotating("config write")
			e.b.dropConfig() // as another node's write does: the next request builds the engine
			if !works(t, e) {
				t.Fatal("the configured key does not work")
			}
			stillRotating("engine build")
			checkGraceOutcome(t, e, <-rotated, write == "another setting", old.AccessKey)
		})
	}
}

// rotationAnswer is config/rotate-root's answer, from the background.
type rotationAnswer struct {
	resp *logical.Response
	err  error
}

// rotateUntilSwitched starts config/rotate-root in the background and
// returns once it has switched to the new key, within old_key_grace.
func rotateUntilSwitched(t *testing.T, e *testEnv) <-chan rotationAnswer {
	t.Helper()
	switched := make(chan struct{})
	e.b.rotationHook = func(step string) bool {
		if step == "switched" {
			close(switched)
		}
		return false
	}
	rotated, finished := make(chan rotationAnswer, 1), make(chan struct{})
	go func() {
		defer close(finished)
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "config/rotate-root", Storage: e.storage}
		resp, err := e.b.HandleRequest(context.Background(), req)
		rotated <- rotationAnswer{resp, err}
	}()
	t.Cleanup(func() { <-finished })
	<-switched
	return rotated
}

// checkGraceOutcome: after the grace, one key when the config still names
// the new one; both, with a warning, when a write pointed it back.
func checkGraceOutcome(t *testing.T, e *testEnv, got rotationAnswer, kept bool, oldKey string) {
	t.Helper()
	if got.err != nil || got.resp.IsError() {
		t.Fatalf("rotation: %v %v", got.err, got.resp)
	}
	if kept {
		exactlyOne(t, e)
	} else if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 2 || configuredKey(t, e) != oldKey || len(got.resp.Warnings) != 1 {
		t.Fatalf("IAM holds %v, config names %s, warnings %v", ids, configuredKey(t, e), got.resp.Warnings)
	}
	if walCount(t, e) != 0 {
		t.Fatal("log left")
	}
}

// hostileIAM is an sts/iam endpoint the config is pointed at: it takes the
// configured key, answers the next CreateAccessKey with forged and, with
// failDelete, never deletes a key.
func hostileIAM(t *testing.T, e *testEnv, forged string, failDelete bool) {
	t.Helper()
	fake := ststest.New()
	t.Cleanup(fake.Close)
	fake.AddUserKey("vault", keytest.AccessKeyID, keytest.Secret)
	fake.ForgeNextAccessKey(forged)
	if failDelete {
		fake.InjectFault(ststest.Fault{Action: "DeleteAccessKey", Code: "ServiceFailure", Message: "down", Status: 500, Count: 1000})
	}
	e.mustWrite(t, "config", map[string]any{"sts_endpoint": fake.URL, "iam_endpoint": fake.URL, "skip_verification": true, "rotation_verify_timeout": "1s"})
}

// A rotation against a hostile endpoint that answers CreateAccessKey with
// an existing key's ID (an administrator's second key, or the live key),
// refuses the new key's proof and fails DeleteAccessKey: pointed back at
// IAM, neither the rollback nor the next rotation deletes that key.
func TestRotationForgedKeyIDDeletesNothing(t *testing.T) {
	for _, victim := range []string{"administrator's key", "live key"} {
		for _, recover := range []string{"rollback", "next rotation"} {
			t.Run(victim+"/"+recover, func(t *testing.T) {
				e := rotationEnv(t)
				id := keytest.AccessKeyID
				if victim == "administrator's key" {
					id, _ = e.peer.AddUserKeyAt("vault", time.Now().Add(-time.Hour))
				}
				hostileIAM(t, e, id, true)
				if resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil); status(resp, err) == http.StatusOK {
					t.Fatal("the rotation succeeded against the forged answer")
				}
				e.mustWrite(t, "config", map[string]any{"sts_endpoint": e.peer.URL, "iam_endpoint": e.peer.URL})
				if recover == "next rotation" {
					_, _ = e.request(t, logical.UpdateOperation, "config/rotate-root", nil) // 400 while the administrator's key is there
				} else {
					e.recover(t, recover)
				}
				// The live key may go only by a rotation away from it.
				if !slices.Contains(e.peer.AccessKeyIDs("vault"), id) && (victim != "live key" || configuredKey(t, e) == id) {
					t.Fatalf("the %s %s was deleted at IAM", victim, id)
				}
				if !works(t, e) {
					t.Fatal("the configured key no longer works")
				}
			})
		}
	}
}

// replayLog is a rotation's log against the current config and peer,
// from a minute ago to now.
func replayLog(t *testing.T, e *testEnv) rotationWAL {
	t.Helper()
	cfg, err := e.b.config(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	return rotationWAL{OldAccessKey: cfg.AccessKey, OldStore: storeRef(cfg), User: "arn:aws:iam::123456789012:user/vault",
		Started: now.Add(-time.Minute), Until: now, Before: []string{cfg.AccessKey}, Endpoints: cfg.commonConfig.endpoints()}
}

// A log that names its new key gets the same proof as one that does not:
// a key made outside the window, or listed before the rotation, is kept;
// the old key goes only once the configured key is shown to be the new one.
func TestRotationReplayProvesNamedKeys(t *testing.T) {
	tests := []struct {
		name   string
		log    func(e *testEnv, w *rotationWAL) (kept string)
		reason string
	}{
		{"made before the window", func(e *testEnv, w *rotationWAL) string {
			w.NewAccessKey, _ = e.peer.AddUserKeyAt("vault", time.Now().Add(-time.Hour))
			return w.NewAccessKey
		}, "outside the rotation's window"},
		{"listed before the rotation", func(e *testEnv, w *rotationWAL) string {
			w.NewAccessKey, _ = e.peer.AddUserKeyAt("vault", time.Now())
			w.Before = append(w.Before, w.NewAccessKey)
			return w.NewAccessKey
		}, "had it before the rotation"},
		{"config names the old key as the new", func(e *testEnv, w *rotationWAL) string {
			admin, _ := e.peer.AddUserKeyAt("vault", time.Now())
			w.OldAccessKey, w.NewAccessKey, w.Switched = admin, keytest.AccessKeyID, true
			return admin
		}, "cannot be shown to be the rotation's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := rotationEnv(t)
			w := replayLog(t, e)
			kept := tt.log(e, &w)
			if _, err := framework.PutWAL(context.Background(), e.storage, walRotateRoot, w); err != nil {
				t.Fatal(err)
			}
			warnings, err := e.b.replayRotations(context.Background(), e.storage)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], kept) || !strings.Contains(warnings[0], tt.reason) {
				t.Fatalf("warnings %q, want one naming %s: %s", warnings, kept, tt.reason)
			}
			if ids := e.peer.AccessKeyIDs("vault"); !slices.Contains(ids, kept) || !slices.Contains(ids, keytest.AccessKeyID) {
				t.Fatalf("IAM holds %v", ids)
			}
		})
	}
}

// On a PKCS#11 token, a forged CreateAccessKey answer never makes the undo
// destroy an object the rotation did not make: not the live key's (the
// answer names the configured key), nor one already labelled for the new
// key, which the rotation reports as such.
func TestRotationUndoDestroysOnlyItsImport(t *testing.T) {
	for _, forged := range []string{"configured key", "key with an object"} {
		t.Run(forged, func(t *testing.T) {
			e := newTestEnv(t)
			fields := e.storeConfig(t, "pkcs11")
			e.mustWrite(t, "config", with(fields, "iam_endpoint", e.peer.URL))
			e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
			id, want := keytest.AccessKeyID, []string{"aws-hmac-" + keytest.AccessKeyID}
			if forged == "key with an object" {
				id = "AKIAPLANTEDOBJECT234"
				want = append(want, "aws-hmac-"+id)
				plantObject(t, fields, id)
			}
			hostileIAM(t, e, id, false) // the undo's DeleteAccessKey succeeds: the store's is next
			resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
			labels := tokenKeyLabels(t, fields)
			slices.Sort(labels)
			if slices.Sort(want); !slices.Equal(labels, want) {
				t.Fatalf("token holds %v, want %v", labels, want)
			}
			if status(resp, err) == http.StatusOK || strings.Contains(errText(resp, err), "secret_key") {
				t.Fatalf("got %d %q", status(resp, err), errText(resp, err))
			}
			if forged == "key with an object" && !strings.Contains(errText(resp, err), "this rotation did not make") {
				t.Fatalf("the answer does not say what happened: %q", errText(resp, err))
			}
			e.mustWrite(t, "config", map[string]any{"sts_endpoint": e.peer.URL, "iam_endpoint": e.peer.URL})
			if !works(t, e) {
				t.Fatal("the configured key no longer works")
			}
		})
	}
}

// plantObject imports a key labelled for id onto the test token, as an
// earlier import, or anyone with the PIN, may have.
func plantObject(t *testing.T, fields map[string]any, id string) {
	t.Helper()
	p := &pkcs11Params{Module: fields["pkcs11_module"].(string), TokenLabel: fields["pkcs11_token_label"].(string),
		PIN: fields["pkcs11_pin"].(string), KeyLabel: "aws-hmac-" + id}
	k, err := p.importSecret(context.Background(), id, "cGxhbnRlZC1vYmplY3Qtc2VjcmV0LTAwMDAwMDAwMDA=")
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Close()
}

// A log whose store reference names another transit (from an earlier
// config, whoever wrote it) gets nothing sent there: the replay deletes
// the key it proves its own and keeps the object, with a warning, rather
// than send the current transit_token to that address.
func TestRotationReplaySendsNoTokenElsewhere(t *testing.T) {
	e, _ := transitRotationEnv(t)
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(elsewhere.Close)
	w := replayLog(t, e)
	w.NewAccessKey, _ = e.peer.AddUserKeyAt("vault", time.Now())
	w.NewStore = with(w.OldStore, "transit_address", elsewhere.URL, "transit_key_name", "aws-hmac-"+strings.ToLower(w.NewAccessKey))
	if _, err := framework.PutWAL(context.Background(), e.storage, walRotateRoot, w); err != nil {
		t.Fatal(err)
	}
	warnings, err := e.b.replayRotations(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the logged address", hits.Load())
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "transit_address") {
		t.Fatalf("warnings %q, want one naming transit_address", warnings)
	}
	exactlyOne(t, e)
}
