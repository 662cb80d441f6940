package awshmac

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestRotateRoot(t *testing.T) {
	e := rotationEnv(t)
	e.peer.SetNewKeyDelay(1500 * time.Millisecond) // IAM propagates new keys slowly
	for i := range 3 {
		before := configuredKey(t, e)
		resp := e.mustWrite(t, "config/rotate-root", nil)
		if resp.Data["previous_access_key"] != before || resp.Data["access_key"] == before || len(resp.Data) != 2 {
			t.Fatalf("rotation %d answered %v", i, resp.Data)
		}
		exactlyOne(t, e)
		if walCount(t, e) != 0 {
			t.Fatal("a finished rotation left its log")
		}
	}
	if keyWorks(e, keytest.AccessKeyID, keytest.Secret) {
		t.Fatal("the pasted secret still works after rotation")
	}
	resp, _ := e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["last_rotated"] == "" || resp.Data["access_key_created"] == "" {
		t.Fatalf("config read: %v", resp.Data)
	}
	// No secret of any key that ever existed is in storage.
	for _, k := range storageKeys(t, e.storage) {
		entry, _ := e.storage.Get(context.Background(), k)
		keytest.NoSecretIn(t, "storage "+k, entry.Value)
	}
}

func TestRotateOnImport(t *testing.T) {
	e := newTestEnv(t)
	resp := e.mustWrite(t, "config", with(e.baseConfig(), "rotate_on_import", true, "old_key_grace", "1s"))
	if resp == nil || resp.Data["access_key"] == keytest.AccessKeyID || resp.Data["previous_access_key"] != keytest.AccessKeyID {
		t.Fatalf("rotate_on_import answered %v", resp)
	}
	if keyWorks(e, keytest.AccessKeyID, keytest.Secret) {
		t.Fatal("the pasted secret still works")
	}
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	exactlyOne(t, e)
}

// Each failure leaves one working key configured, no key in IAM the
// plugin forgot, and no log.
func TestRotationFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *testEnv)
		status int
		reason string
	}{
		{"create fails", func(e *testEnv) {
			e.peer.InjectFault(ststest.Fault{Action: "CreateAccessKey", Code: "ServiceFailure", Message: "down", Status: 500, Count: 10})
		}, http.StatusBadGateway, "CreateAccessKey"},
		{"create refused", func(e *testEnv) {
			e.peer.InjectFault(ststest.Fault{Action: "CreateAccessKey", Code: "AccessDenied", Message: "no", Status: 403, Count: 1})
		}, http.StatusBadRequest, "AccessDenied"},
		{"two keys present", func(e *testEnv) {
			e.peer.AddUserKey("vault", "AKIDSECONDKEY00000", "c2Vjb25kLWtleS1zZWNyZXQtMDAwMDAwMDAwMDAw")
		}, http.StatusBadRequest, "AKIDSECONDKEY00000"},
		{"verification times out", func(e *testEnv) {
			e.peer.SetNewKeyDelay(time.Hour)
			e.mustWrite(t, "config", map[string]any{"rotation_verify_timeout": "2s", "skip_verification": true})
		}, http.StatusBadGateway, "InvalidClientTokenId"},
		{"import fails", func(e *testEnv) {
			e.b.rotationHook = func(step string) bool {
				if step == "created" {
					e.kekAway(t)
				}
				return false
			}
		}, http.StatusServiceUnavailable, "tink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := rotationEnv(t)
			before := configuredKey(t, e)
			tt.setup(e)
			resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
			if status(resp, err) != tt.status || !strings.Contains(errText(resp, err), tt.reason) {
				t.Fatalf("got %d %q, want %d naming %s", status(resp, err), errText(resp, err), tt.status, tt.reason)
			}
			e.kekBack(t)
			if configuredKey(t, e) != before || walCount(t, e) != 0 {
				t.Fatalf("config now %s, log %d", configuredKey(t, e), walCount(t, e))
			}
			if tt.name == "two keys present" {
				if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 2 {
					t.Fatalf("the plugin touched a key it did not create: %v", ids)
				}
				return
			}
			exactlyOne(t, e)
		})
	}
}

// A new key that proves another identity than the user rotating — for
// each key store: 502, the old key still configured and working, the new
// key deleted from IAM, no log left.
func TestRotationRefusesAnotherIdentity(t *testing.T) {
	for _, store := range storeNames() {
		t.Run(store, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustWrite(t, "config", with(e.storeConfig(t, store), "rotation_verify_timeout", "1s"))
			e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
			before := configuredKey(t, e)
			e.peer.NewKeysProveAs("arn:aws:iam::123456789012:user/intruder")
			resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
			if status(resp, err) != http.StatusBadGateway || !strings.Contains(errText(resp, err), "another identity") {
				t.Fatalf("got %d %q, want 502 naming another identity", status(resp, err), errText(resp, err))
			}
			if got := configuredKey(t, e); got != before {
				t.Fatalf("the config now names %s", got)
			}
			if ids := e.peer.AccessKeyIDs("vault"); len(ids) != 1 || ids[0] != before {
				t.Fatalf("IAM holds %v after the refused rotation", ids)
			}
			if n := walCount(t, e); n != 0 {
				t.Fatalf("%d log entries left", n)
			}
			if !works(t, e) {
				t.Fatal("the old key no longer works")
			}
		})
	}
}
