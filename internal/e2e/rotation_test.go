package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// rememberSecret adds a secret, and K, to what the leak scan searches for.
func (w *world) rememberSecret(secret string) {
	for _, f := range []string{secret, "AWS4" + secret} {
		w.secretForms = append(w.secretForms, f, hex.EncodeToString([]byte(f)), base64.StdEncoding.EncodeToString([]byte(f)))
	}
}

// peerTakes asks the STS peer directly whether a key works.
func (w *world) peerTakes(id, secret string) bool {
	client := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.peer.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	_, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	return err == nil
}

// rotMount is one key store's mount for the rotation phase.
func rotMount(store string) string { return "aws-hmac-rot-" + store }

// runRotation, for each key store on a mount of its own: the pasted secret
// is rotated away on import and refused by the peer, creds/ and sign/ work
// with the new key, two more rotations, a scheduled one, and after a plugin
// reload the rotated key is used.
func (w *world) runRotation(t *testing.T) {
	stores := []string{"transit", "pkcs11", "tpm", "tink"}
	last := map[string]string{}
	for _, store := range stores {
		last[store] = w.rotateStore(t, store)
	}
	// Scheduled rotation, on every mount at once: Vault calls the plugin's
	// periodic function about once a minute.
	for _, store := range stores {
		w.cli(t, "write", rotMount(store)+"/config", "rotation_period=2s", "skip_verification=true")
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, store := range stores {
		for w.configuredKey(t, store) == last[store] {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no scheduled rotation", store)
			}
			time.Sleep(time.Second) // waiting for Vault's periodic call
		}
		w.cli(t, "write", rotMount(store)+"/config", "disable_automated_rotation=true", "skip_verification=true")
	}
	for _, store := range stores {
		id := w.configuredKey(t, store)
		w.rememberSecret(w.peer.Secret(id))
		last[store] = id
	}
	w.cli(t, "plugin", "reload", "-plugin="+pluginName, "-scope=global")
	for _, store := range stores {
		w.eventually(t, store+" creds after reload", func() bool { return w.credsWork(t, store) })
		if got := w.configuredKey(t, store); got != last[store] {
			t.Fatalf("%s: after reload the config names %s, want %s", store, got, last[store])
		}
	}
}

// rotateStore configures one store with rotate_on_import and rotates twice
// more; it returns the access key in use.
func (w *world) rotateStore(t *testing.T, store string) string {
	m := rotMount(store)
	w.cli(t, "secrets", "enable", "-path="+m, pluginName)
	pastedID, pasted := w.peer.AddUser("rot-" + store)
	w.rememberSecret(pasted)
	args := append([]string{"write", "-format=json", m + "/config", "access_key=" + pastedID, "secret_key=" + pasted,
		"key_store=" + store, "sts_endpoint=" + w.peer.URL, "iam_endpoint=" + w.peer.URL, "region=us-east-1",
		"rotate_on_import=true", "old_key_grace=1s"}, w.storeFieldsFor(store, pastedID)...)
	out := w.cli(t, args...)
	var resp struct{ Data map[string]string }
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Data["previous_access_key"] != pastedID {
		t.Fatalf("%s: rotate_on_import answered %s", store, redact(out, w))
	}
	w.rememberSecret(w.peer.Secret(resp.Data["access_key"]))
	if w.peerTakes(pastedID, pasted) {
		t.Fatalf("%s: the pasted secret still works", store)
	}
	w.cli(t, "write", m+"/roles/session", "credential_type=session_token")
	w.cli(t, "write", m+"/roles/signer", "allowed_services=sts", "allowed_actions=sts:GetCallerIdentity", "allowed_regions=us-east-1", "allowed_hosts=127.0.0.1")
	for i := range 3 {
		if i > 0 {
			s, err := w.vault.Client.Logical().Write(m+"/config/rotate-root", nil)
			if err != nil {
				t.Fatalf("%s: rotate-root: %v", store, err)
			}
			w.rememberSecret(w.peer.Secret(s.Data["access_key"].(string)))
		}
		if !w.credsWork(t, store) {
			t.Fatalf("%s: creds/ after rotation %d", store, i)
		}
		s, err := w.vault.Client.Logical().Write(m+"/sign/signer", map[string]any{"url": w.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"})
		if err != nil {
			t.Fatal(err)
		}
		if code, body := w.sendSigned(t, s); code != http.StatusOK || !strings.Contains(body, "user/rot-"+store) {
			t.Fatalf("%s: signature after rotation %d: %d %s", store, i, code, body)
		}
	}
	if ids := w.peer.AccessKeyIDs("rot-" + store); len(ids) != 1 {
		t.Fatalf("%s: IAM holds %v", store, ids)
	}
	return w.configuredKey(t, store)
}

// storeFieldsFor is storeFields with names of the store's own for this key.
func (w *world) storeFieldsFor(store, accessKey string) []string {
	fields := w.storeFields(store)
	if store == "pkcs11" {
		fields = append(fields, "pkcs11_key_label=aws-hmac-"+accessKey)
	}
	return fields
}

func (w *world) configuredKey(t *testing.T, store string) string {
	t.Helper()
	s, err := w.vault.Client.Logical().Read(rotMount(store) + "/config")
	if err != nil || s == nil {
		t.Fatalf("%s config: %v", store, err)
	}
	return s.Data["access_key"].(string)
}

func (w *world) credsWork(t *testing.T, store string) bool {
	t.Helper()
	s, err := w.vault.Client.Logical().Read(rotMount(store) + "/creds/session")
	if err != nil || s == nil {
		return false
	}
	raw, _ := json.Marshal(s.Data)
	var c stsCreds
	_ = json.Unmarshal(raw, &c)
	return w.peerIdentity(t, c) == "arn:aws:iam::123456789012:user/rot-"+store
}

func (w *world) eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(200 * time.Millisecond) // polling a reloading plugin
	}
}
