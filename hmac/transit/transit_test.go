package transit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func startVault(t *testing.T, opts testenv.VaultOptions) *testenv.Vault {
	t.Helper()
	v := testenv.StartVault(t, opts)
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestImportSignAndNeverExport(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	k, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, k)
	keytest.NoSecretIn(t, "the key identity", []byte(k.KeyIdentity()))

	info, err := v.Client.Logical().Read("transit/keys/aws")
	if err != nil {
		t.Fatal(err)
	}
	if info.Data["exportable"] != false || info.Data["allow_plaintext_backup"] != false || info.Data["type"] != "hmac" {
		t.Fatalf("key settings %v", info.Data)
	}
	for _, path := range []string{"transit/export/hmac-key/aws", "transit/backup/aws"} {
		if _, err := v.Client.Logical().Read(path); err == nil {
			t.Fatalf("%s answered: the key left transit", path)
		}
	}

	// Opened again by reference, with the key address, token and mount as a user configures them.
	opened, err := transit.Open(ctx, transit.Config{Address: v.Addr, Token: v.Token, Name: "aws"}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, opened)

	if _, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret); !errors.Is(err, hmac.ErrKeyExists) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second import: %v", err)
	}
}

func TestNewVersionsAndPinning(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	k, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	first := k.KeyIdentity()
	const newSecret = "Z9yxWVut5rQPoNMlkJiHgFeDcBa0123456789abc"
	if err := k.ImportVersion(ctx, newSecret); err != nil {
		t.Fatal(err)
	}
	if k.Version() != 2 || k.KeyIdentity() == first {
		t.Fatalf("after a new version: version %d identity %q", k.Version(), k.KeyIdentity())
	}
	got, err := k.HMAC(ctx, []byte(keytest.Date))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hmac.NewStaticKey(keytest.AccessKeyID, newSecret).HMAC(ctx, []byte(keytest.Date))
	if string(got) != string(want) {
		t.Fatal("version 2 does not HMAC with the new secret")
	}
	pinned, err := transit.Open(ctx, transit.Config{Client: v.Client, Name: "aws", Version: 1}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, pinned)
	if _, err := transit.Open(ctx, transit.Config{Client: v.Client, Name: "aws", Version: 3}, keytest.AccessKeyID); err == nil || !strings.Contains(err.Error(), "no version 3") {
		t.Fatalf("pin to a missing version: %v", err)
	}
}

func TestClearErrors(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	if _, err := v.Client.Logical().Write("transit/keys/aes", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     transit.Config
		wantErr string
	}{
		{"missing key", transit.Config{Client: v.Client, Name: "nope"}, "not found"},
		{"wrong key type", transit.Config{Client: v.Client, Name: "aes"}, "not hmac"},
		{"bad token", transit.Config{Address: v.Addr, Token: "not-a-token", Name: "aes"}, "HTTP 403"},
		{"vault down", transit.Config{Address: "http://127.0.0.1:1", Token: "x", Name: "aes"}, "connect"},
		{"no name", transit.Config{Client: v.Client}, "no key name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transit.Open(ctx, tt.cfg, keytest.AccessKeyID)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), v.Token) || strings.Contains(err.Error(), "not-a-token") {
				t.Fatal("token in error")
			}
		})
	}
}

func TestConcurrentHMACs(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	k, err := transit.Import(context.Background(), transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keytest.Hammer(t, k, 32, 500)
}

func TestSealedVaultAndRevokedToken(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{FileStorage: true})
	ctx := context.Background()
	if _, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"root"}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := transit.Open(ctx, transit.Config{Address: v.Addr, Token: tok.Auth.ClientToken, Name: "aws"}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, k)

	if err := v.Client.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	_, err = k.HMAC(ctx, []byte(keytest.Date))
	if err == nil || !strings.Contains(err.Error(), "transit:") || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("HMAC on a sealed Vault: %v", err)
	}
	v.Unseal(t)
	keytest.CheckSuite(t, k)
}

func TestCloseDuringHMAC(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	k, err := transit.Import(context.Background(), transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckCloseDuringHMAC(t, k)
}
