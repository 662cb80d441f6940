package awshmac

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

// transitWorld is a real Vault with transit, the key imported through the
// plugin with the root token, and a policy that only uses the key.
type transitWorld struct {
	vault   *testenv.Vault
	keyName string
}

func newTransitWorld(t *testing.T, e *testEnv) *transitWorld {
	t.Helper()
	v := testenv.StartVault(t, testenv.VaultOptions{})
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	policy := `path "transit/keys/*" { capabilities = ["read"] }
path "transit/hmac/*" { capabilities = ["update"] }`
	if err := v.Client.Sys().PutPolicy("aws-hmac", policy); err != nil {
		t.Fatal(err)
	}
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "transit",
		"transit_address", v.Addr, "transit_token", v.Token))
	return &transitWorld{vault: v, keyName: "aws-hmac-" + "akidexample"}
}

// token makes a token holding only the key-use policy.
func (w *transitWorld) token(t *testing.T, ttl string, renewable bool) string {
	t.Helper()
	s, err := w.vault.Client.Auth().Token().Create(&api.TokenCreateRequest{
		Policies: []string{"aws-hmac"}, TTL: ttl, Renewable: &renewable, NoParent: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// signedWith signs a request through the plugin and tells whether its
// signature is the one secret gives.
func signedWith(t *testing.T, e *testEnv, secret string) bool {
	t.Helper()
	url := "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
	resp := e.mustWrite(t, "sign/signer", map[string]any{"url": url, "service": "sts"})
	c := &signChecker{signer: sigv4.NewSigner(), key: hmac.NewStaticKey(keytest.AccessKeyID, secret)}
	return c.check(resp, url, "eu-west-3") == ""
}

// A version imported into transit behind the plugin's back is used within
// the refresh interval, without a config write or a reload.
func TestTransitVersionImportedBehindTheBack(t *testing.T) {
	e := newTestEnv(t)
	e.b.refreshInterval = 200 * time.Millisecond
	w := newTransitWorld(t, e)
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	if !signedWith(t, e, keytest.Secret) {
		t.Fatal("the imported secret does not sign")
	}
	const next = "bmV4dC1zZWNyZXQtYWNjZXNzLWtleS0wMTIzNDU2Nzg5"
	k, err := transit.Open(context.Background(), transit.Config{Client: w.vault.Client, Name: w.keyName}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.ImportVersion(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !signedWith(t, e, next) {
		if time.Now().After(deadline) {
			t.Fatal("the plugin still signs with version 1 long after the refresh interval")
		}
		time.Sleep(50 * time.Millisecond) // polling the plugin, not waiting on a guess
	}
}

// A renewable transit token with a 30 s TTL still works two minutes later:
// the plugin renews it, and the config read shows its TTL.
func TestTransitTokenRenewed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	w := newTransitWorld(t, e)
	token := w.token(t, "30s", true)
	e.mustWrite(t, "config", map[string]any{"transit_token": token})
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	start := time.Now()
	for time.Since(start) < 2*time.Minute {
		resp, _ := e.request(t, logical.ReadOperation, "config", nil)
		if ttl, ok := resp.Data["transit_token_ttl"].(int64); ok && (ttl <= 0 || ttl > 30) {
			t.Fatalf("transit_token_ttl %d", ttl)
		}
		if msg := resp.Data["transit_token_warning"]; msg != nil && msg != "" {
			t.Fatalf("warning on a renewable token: %v", msg)
		}
		time.Sleep(5 * time.Second) // the test is about time passing
	}
	resp, _ := e.request(t, logical.ReadOperation, "config", nil)
	if resp.Data["transit_token_renewable"] != true {
		t.Fatalf("config read: %v", resp.Data)
	}
	// Independently, as Vault sees the token: renewed, and alive.
	info, err := w.vault.Client.Auth().Token().Lookup(token)
	if err != nil {
		t.Fatalf("the token is gone after 2 minutes: %v", err)
	}
	if ttl, _ := info.TokenTTL(); ttl <= 0 || ttl > 30*time.Second || info.Data["last_renewal_time"] == nil {
		t.Fatalf("Vault shows the token with TTL %v, last renewed %v", ttl, info.Data["last_renewal_time"])
	}
	// A fresh engine opens the key and asks transit for kDate with the token.
	e.b.dropConfig()
	if !signedWith(t, e, keytest.Secret) {
		t.Fatal("the token no longer works after 2 minutes")
	}
}

// A token that cannot be renewed is reported in the config read before it
// expires.
func TestTransitNonRenewableTokenReported(t *testing.T) {
	e := newTestEnv(t)
	w := newTransitWorld(t, e)
	e.mustWrite(t, "config", map[string]any{"transit_token": w.token(t, "1h", false)})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.request(t, logical.ReadOperation, "config", nil)
		if status(resp, err) != http.StatusOK {
			t.Fatal(resp, err)
		}
		warning := fmt.Sprint(resp.Data["transit_token_warning"])
		if resp.Data["transit_token_renewable"] == false && warning != "" {
			ttl := resp.Data["transit_token_ttl"].(int64)
			if ttl <= 0 || ttl > 3600 {
				t.Fatalf("transit_token_ttl %d", ttl)
			}
			for _, f := range writeOnlyFields() {
				if _, ok := resp.Data[f]; ok {
					t.Fatalf("config read shows %s", f)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report of the non-renewable token: %v", resp.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
