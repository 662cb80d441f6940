package awshmac

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// recorder is a listener that counts who connects: proof that a refused
// write sent nothing anywhere.
type recorder struct {
	ln    net.Listener
	conns atomic.Int64
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			c.Close()
		}
	}()
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

// bindingCase: a store configured with its credential, a write that moves
// only where the credential goes, and one that moves it with the credential.
type bindingCase struct {
	store, credential string
	setup             func(t *testing.T, e *testEnv, rec *recorder) (cfg, redirect, accepted map[string]any)
}

func bindingCases() []bindingCase {
	return []bindingCase{
		{"transit", "transit_token", func(t *testing.T, e *testEnv, rec *recorder) (map[string]any, map[string]any, map[string]any) {
			cfg := e.storeConfig(t, "transit")
			same := strings.Replace(cfg["transit_address"].(string), "127.0.0.1", "localhost", 1)
			return cfg, map[string]any{"transit_address": "http://" + rec.addr()},
				map[string]any{"transit_address": same, "transit_token": cfg["transit_token"]}
		}},
		{"tink", "tink_vault_token", func(t *testing.T, e *testEnv, rec *recorder) (map[string]any, map[string]any, map[string]any) {
			v := vaultWithKEK(t)
			host := strings.TrimPrefix(v.Addr, "http://")
			cfg := with(e.baseConfig(), "tink_kek_uri", "hcvault://"+host+"/transit/keys/kek", "tink_vault_address", v.Addr, "tink_vault_token", v.Token)
			return cfg, map[string]any{"tink_vault_address": "http://" + rec.addr()},
				map[string]any{"tink_vault_address": "http://localhost:" + strings.Split(host, ":")[1], "tink_vault_token": v.Token}
		}},
		{"pkcs11", "pkcs11_pin", func(t *testing.T, e *testEnv, _ *recorder) (map[string]any, map[string]any, map[string]any) {
			cfg := e.storeConfig(t, "pkcs11")
			redirect := map[string]any{"pkcs11_token_label": "another-token"}
			return cfg, redirect, map[string]any{"pkcs11_token_label": cfg["pkcs11_token_label"], "pkcs11_pin": cfg["pkcs11_pin"], "pkcs11_max_sessions": 4}
		}},
		{"tpm", "tpm_password", func(t *testing.T, e *testEnv, rec *recorder) (map[string]any, map[string]any, map[string]any) {
			cfg := with(e.storeConfig(t, "tpm"), "tpm_password", "key-auth-value")
			device := cfg["tpm_device"].(string)
			same := strings.Replace(device, "127.0.0.1", "localhost", 1)
			e.b.env.tpmAddresses = append(e.b.env.tpmAddresses, rec.addr(), strings.TrimPrefix(same, "tcp://"))
			return cfg, map[string]any{"tpm_device": "tcp://" + rec.addr()}, map[string]any{"tpm_device": same, "tpm_password": "key-auth-value"}
		}},
	}
}

func vaultWithKEK(t *testing.T) *testenv.Vault {
	t.Helper()
	v := testenv.StartVault(t, testenv.VaultOptions{})
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().Write("transit/keys/kek", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	return v
}

// A write that changes where a stored credential goes, without giving it
// again, is refused naming the credential, changes nothing and sends
// nothing; given again, the same kind of write works.
func TestCredentialsBoundToWhereTheyGo(t *testing.T) {
	for _, tc := range bindingCases() {
		t.Run(tc.store, func(t *testing.T) {
			e := newTestEnv(t)
			rec := newRecorder(t)
			cfg, redirect, accepted := tc.setup(t, e, rec)
			e.mustWrite(t, "config", cfg)
			before := storedConfigBytes(t, e)
			resp, err := e.request(t, logical.UpdateOperation, "config", redirect)
			if status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(errText(resp, err), tc.credential+" must be given again") {
				t.Fatalf("redirect without %s: %d %q", tc.credential, status(resp, err), errText(resp, err))
			}
			if n := rec.conns.Load(); n != 0 {
				t.Fatalf("the refused write reached the new address %d times", n)
			}
			if after := storedConfigBytes(t, e); before != after {
				t.Fatal("a refused write changed the stored config")
			}
			e.mustWrite(t, "config", accepted)
			if rec.conns.Load() != 0 {
				t.Fatal("the accepted write went to the recorder")
			}
		})
	}
}

// storedConfig is the config as stored: a read also shows a token's TTL,
// which changes by itself.
func storedConfigBytes(t *testing.T, e *testEnv) string {
	t.Helper()
	entry, err := e.storage.Get(context.Background(), configStoragePath)
	if err != nil || entry == nil {
		t.Fatal(err)
	}
	return string(entry.Value)
}

func readConfig(t *testing.T, e *testEnv) map[string]any {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "config", nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatal(err, resp)
	}
	return resp.Data
}

// Unrelated fields stay writable alone: the binding names only what
// decides where a credential goes.
func TestUnboundFieldsNeedNoCredential(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "config", e.storeConfig(t, "transit"))
	e.mustWrite(t, "config", map[string]any{"region": "us-west-2", "max_retries": 2, "transit_key_version": 1})
}

// Nothing a config read returns opens the key with a credential the
// plugin holds: every value is tried as the keyset under the KEK itself,
// and the stored keyset (the control) does open.
func TestReadRecoversNothingWithTheKEK(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	kek := tink.Config{KEKURI: tink.LocalKEKScheme + e.kekPath, AssociatedData: []byte("vault-plugin-aws-hmac:" + keytest.AccessKeyID)}
	for name, v := range readConfig(t, e) {
		s, ok := v.(string)
		if !ok || s == "" {
			continue
		}
		kek.Keyset = []byte(s)
		if k, err := tink.Open(context.Background(), kek, keytest.AccessKeyID); err == nil {
			k.Close()
			t.Errorf("config read field %s opens the key with the KEK", name)
		}
	}
	stored, err := e.b.config(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	kek.Keyset = []byte(stored.store.(*tinkParams).Keyset)
	k, err := tink.Open(context.Background(), kek, keytest.AccessKeyID)
	if err != nil {
		t.Fatalf("the control: the stored keyset does not open: %v", err)
	}
	k.Close()
}

// A PKCS#11 key label or ID names which object the stored PIN unlocks:
// changing either needs the PIN again.
func TestPKCS11KeyBoundToThePIN(t *testing.T) {
	e := newTestEnv(t)
	cfg := e.storeConfig(t, "pkcs11")
	e.mustWrite(t, "config", cfg)
	for _, field := range []string{"pkcs11_key_label", "pkcs11_key_id"} {
		value := map[string]string{"pkcs11_key_label": "aws-hmac-akidother", "pkcs11_key_id": "0badc0de"}[field]
		resp, err := e.request(t, logical.UpdateOperation, "config", map[string]any{field: value})
		if status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(errText(resp, err), "pkcs11_pin must be given again to change "+field) {
			t.Errorf("%s without the PIN: %d %q", field, status(resp, err), errText(resp, err))
		}
	}
}
