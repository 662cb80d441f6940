package awshmac

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

// storeConfig starts the real component behind a key store and returns
// the config fields that import the test secret into it.
func (e *testEnv) storeConfig(t *testing.T, store string) map[string]any {
	t.Helper()
	base := with(e.baseConfig(), "tink_kek_uri", nil, "key_store", store)
	switch store {
	case "tink":
		return e.baseConfig()
	case "transit":
		v := testenv.StartVault(t, testenv.VaultOptions{})
		if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
			t.Fatal(err)
		}
		return with(base, "transit_address", v.Addr, "transit_token", v.Token)
	case "pkcs11":
		hsm := testenv.NewSoftHSM(t, "aws-hmac")
		e.b.env.pkcs11Modules = append(e.b.env.pkcs11Modules, hsm.Module)
		return with(base, "pkcs11_module", hsm.Module, "pkcs11_token_label", hsm.Label, "pkcs11_pin", hsm.PIN)
	case "tpm":
		sw := testenv.StartSWTPM(t)
		e.b.env.tpmAddresses = append(e.b.env.tpmAddresses, sw.Addr)
		return with(base, "tpm_device", "tcp://"+sw.Addr)
	}
	t.Fatalf("no such store %s", store)
	return nil
}

// signChecker recomputes sign/'s signatures with the known secret.
type signChecker struct {
	signer *sigv4.Signer
	key    hmac.Key
}

func newSignChecker() *signChecker {
	return &signChecker{signer: sigv4.NewSigner(), key: hmac.NewStaticKey(keytest.AccessKeyID, keytest.Secret)}
}

// check returns "" when resp is the signature of GET url for sts in region.
func (c *signChecker) check(resp *logical.Response, url, region string) string {
	headers, _ := resp.Data["headers"].(map[string]any)
	amzDate, _ := headers["X-Amz-Date"].(string)
	when, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return "no X-Amz-Date in " + fmt.Sprint(resp.Data)
	}
	r, _ := http.NewRequest(http.MethodGet, url, nil)
	if err := c.signer.SignHTTP(context.Background(), c.key, r, sigv4.EmptyStringSHA256, "sts", region, when); err != nil {
		return err.Error()
	}
	if got, want := headers["Authorization"], r.Header.Get("Authorization"); got != want {
		return fmt.Sprintf("Authorization %v, want %v", got, want)
	}
	return ""
}

// 32 callers sign while the config is rewritten 50 times: no request fails,
// every signature is right, and the engine left is the one stored.
func TestEngineSwapUnderLoad(t *testing.T) {
	for _, store := range storeNames() {
		t.Run(store, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustWrite(t, "config", e.storeConfig(t, store))
			e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
			checker := newSignChecker()
			url := e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
			var stop atomic.Bool
			var wg sync.WaitGroup
			var signed atomic.Int64
			failures := make(chan string, 32)
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						resp, err := e.request(t, logical.UpdateOperation, "sign/signer", map[string]any{"url": url, "service": "sts", "region": "us-west-2"})
						msg := errText(resp, err)
						if msg == "" {
							msg = checker.check(resp, url, "us-west-2")
						}
						if msg != "" {
							failures <- msg
							return
						}
						signed.Add(1)
					}
				}()
			}
			for i := range 50 {
				e.mustWrite(t, "config", map[string]any{"max_retries": i%3 + 1, "skip_verification": true})
			}
			stop.Store(true)
			wg.Wait()
			close(failures)
			for msg := range failures {
				t.Error(msg)
			}
			if signed.Load() == 0 {
				t.Fatal("nothing was signed")
			}
			stored, err := e.b.config(context.Background(), e.storage)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.engine(t); got.cfg.MaxRetries != stored.MaxRetries || got.cfg.MaxRetries != 49%3+1 {
				t.Fatalf("engine built from max_retries %d, stored config says %d", got.cfg.MaxRetries, stored.MaxRetries)
			}
		})
	}
}

// Two config writes naming different keys, at once, end with the engine
// the stored config names — every time.
func TestConcurrentConfigWritesMatchStorage(t *testing.T) {
	e := newTestEnv(t)
	const otherID, otherSecret = "AKIDOTHEREXAMPLE", "b2JzY3VyZS1zZWNyZXQtZm9yLXRoZS1vdGhlci1rZXk"
	e.peer.AddUserKey("other", otherID, otherSecret)
	keysets := map[string]string{}
	for id, secret := range map[string]string{keytest.AccessKeyID: keytest.Secret, otherID: otherSecret} {
		e.mustWrite(t, "config", with(e.baseConfig(), "access_key", id, "secret_key", secret, "tink_keyset", ""))
		stored, err := e.b.config(context.Background(), e.storage)
		if err != nil {
			t.Fatal(err)
		}
		keysets[id] = stored.store.(*tinkParams).Keyset // a read never returns it
	}
	for range 20 {
		var wg sync.WaitGroup
		for id, ks := range keysets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.mustWrite(t, "config", map[string]any{"access_key": id, "tink_keyset": ks})
			}()
		}
		wg.Wait()
		entry, err := e.storage.Get(context.Background(), configStoragePath)
		if err != nil {
			t.Fatal(err)
		}
		var stored pluginConfig
		if err := entry.DecodeJSON(&stored); err != nil {
			t.Fatal(err)
		}
		if got := e.engine(t).key.AccessKeyID(); got != stored.AccessKey {
			t.Fatalf("engine signs with %s, stored config names %s", got, stored.AccessKey)
		}
	}
}

// countingStorage counts reads.
type countingStorage struct {
	logical.Storage
	reads atomic.Int64
}

func (s *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.reads.Add(1)
	return s.Storage.Get(ctx, key)
}

func (s *countingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.reads.Add(1)
	return s.Storage.List(ctx, prefix)
}

// sign/ and creds/ read nothing from storage once config and role are
// known; a replicated change (Invalidate) is read again, once.
func TestHotPathReadsNoStorage(t *testing.T) {
	e := newTestEnv(t)
	counting := &countingStorage{Storage: e.storage}
	e.storage = counting
	e.configure(t)
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token", "allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	sign := map[string]any{"url": "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"}
	e.mustWrite(t, "sign/r", sign)
	if resp, err := e.request(t, logical.ReadOperation, "creds/r", nil); err != nil || resp.IsError() {
		t.Fatal(err, resp)
	}
	counting.reads.Store(0)
	for range 20 {
		e.mustWrite(t, "sign/r", sign)
		if resp, err := e.request(t, logical.ReadOperation, "creds/r", nil); err != nil || resp.IsError() {
			t.Fatal(err, resp)
		}
	}
	if n := counting.reads.Load(); n != 0 {
		t.Fatalf("20 sign/ and creds/ requests read storage %d times, want 0", n)
	}

	// Another node narrows the role: Invalidate makes this one see it.
	entry, _ := logical.StorageEntryJSON(rolePrefix+"r", &roleEntry{CredentialType: credentialSessionToken, AllowedServices: []string{"s3"},
		AllowedRegions: []string{"*"}, AllowedHosts: []string{"*"}, DefaultSTSTTL: time.Hour, MaxSTSTTL: 36 * time.Hour})
	if err := counting.Storage.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(context.Background(), rolePrefix+"r")
	resp, err := e.request(t, logical.UpdateOperation, "sign/r", sign)
	if status(resp, err) != http.StatusForbidden {
		t.Fatalf("after Invalidate the old role still applied: %v %v", resp, err)
	}
	if n := counting.reads.Load(); n != 1 {
		t.Fatalf("after Invalidate storage was read %d times, want 1", n)
	}
}

// closeRecordingKey notes that its store key was closed.
type closeRecordingKey struct {
	storeKey
	closed atomic.Bool
}

func (k *closeRecordingKey) Close() error {
	k.closed.Store(true)
	return k.storeKey.Close()
}

// A config write retires the engine it replaces, and the retired engine's
// key is closed once its last request is done — not before.
func TestRetiredEngineClosesItsKey(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	var old *closeRecordingKey
	e.installKey(t, func(k storeKey) storeKey { old = &closeRecordingKey{storeKey: k}; return old })
	held := e.b.current.Load()
	if !held.acquire() {
		t.Fatal("the installed engine is already retired")
	}
	e.mustWrite(t, "config", map[string]any{"max_retries": 2, "skip_verification": true})
	if e.b.current.Load() == held {
		t.Fatal("the config write kept the old engine")
	}
	if old.closed.Load() {
		t.Fatal("the old key was closed while a request still used it")
	}
	held.release()
	if !old.closed.Load() {
		t.Fatal("the retired engine's key is still open after its last request")
	}
}
