package tink_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func vaultKEK(t *testing.T) tink.Config {
	t.Helper()
	v := testenv.StartVault(t, testenv.VaultOptions{})
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().Write("transit/keys/kek", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	return tink.Config{
		KEKURI:         "hcvault://" + strings.TrimPrefix(v.Addr, "http://") + "/transit/keys/kek",
		VaultClient:    v.Client,
		AssociatedData: []byte("aws-hmac/config:AKIDEXAMPLE"),
	}
}

func localKEK(t *testing.T) tink.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek.json")
	if err := tink.NewLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	return tink.Config{KEKURI: tink.LocalKEKScheme + path, AssociatedData: []byte("test")}
}

func TestImportOpenSign(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*testing.T) tink.Config
	}{
		{"vault transit KEK", vaultKEK},
		{"local KEK file", localKEK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := tt.cfg(t)
			k, err := tink.Import(ctx, cfg, keytest.AccessKeyID, keytest.Secret)
			if err != nil {
				t.Fatal(err)
			}
			keytest.CheckSuite(t, k)

			ref := k.Reference()
			keytest.NoSecretIn(t, "the encrypted keyset", ref)
			var doc map[string]any
			if err := json.Unmarshal(ref, &doc); err != nil || doc["encryptedKeyset"] == nil || doc["keyset"] != nil {
				t.Fatalf("stored keyset is not an encrypted keyset: %v", err)
			}

			cfg.Keyset = ref
			opened, err := tink.Open(ctx, cfg, keytest.AccessKeyID)
			if err != nil {
				t.Fatal(err)
			}
			keytest.CheckSuite(t, opened)
			keytest.Hammer(t, opened, 32, 500)

			cfg.AssociatedData = []byte("another mount")
			if _, err := tink.Open(ctx, cfg, keytest.AccessKeyID); err == nil {
				t.Fatal("keyset opened with other associated data")
			}
		})
	}
}

func TestClearErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cfg     tink.Config
		wantErr string
	}{
		{"no KEK", tink.Config{Keyset: []byte("{}")}, "no KEK"},
		{"unknown KMS", tink.Config{KEKURI: "azure-kv://vault/keys/k", Keyset: []byte("{}")}, "no KMS client"},
		{"aws-kms URI that is not a key ARN", tink.Config{KEKURI: "aws-kms://not-an-arn", Keyset: []byte("{}")}, "AWS KMS"},
		{"missing local KEK", tink.Config{KEKURI: tink.LocalKEKScheme + "/nonexistent/kek.json", Keyset: []byte("{}")}, "local KEK"},
		{"hcvault without client", tink.Config{KEKURI: "hcvault://127.0.0.1:1/transit/keys/k", Keyset: []byte("{}")}, "needs a Vault client"},
		{"no keyset", tink.Config{KEKURI: "hcvault://x/transit/keys/k"}, "no keyset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tink.Open(ctx, tt.cfg, keytest.AccessKeyID); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCloseDuringHMAC(t *testing.T) {
	k, err := tink.Import(context.Background(), localKEK(t), keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckCloseDuringHMAC(t, k)
}
