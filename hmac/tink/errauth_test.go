package tink_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

// A KEK whose Vault refuses the token (revoked) wraps hmac.ErrAuth, so the
// plugin backs off; a keyset the KEK cannot decrypt does not. No error
// carries the token.
func TestKEKRefusalIsErrAuth(t *testing.T) {
	cfg := vaultKEK(t)
	ctx := context.Background()
	k, err := tink.Import(ctx, cfg, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keyset = k.Reference()
	root := cfg.VaultClient
	s, err := root.Auth().Token().Create(&api.TokenCreateRequest{NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	client, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken(s.Auth.ClientToken)
	cfg.VaultClient = client
	if _, err := tink.Open(ctx, cfg, keytest.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.AssociatedData = []byte("another binding")
	if _, err := tink.Open(ctx, other, keytest.AccessKeyID); err == nil || errors.Is(err, hmac.ErrAuth) {
		t.Fatalf("keyset bound elsewhere: %v, want an error that is not hmac.ErrAuth", err)
	}
	if err := root.Auth().Token().RevokeOrphan(s.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	_, err = tink.Open(ctx, cfg, keytest.AccessKeyID)
	if !errors.Is(err, hmac.ErrAuth) || !strings.Contains(err.Error(), "KMS refused") {
		t.Fatalf("revoked KEK token: %v, want hmac.ErrAuth", err)
	}
	if strings.Contains(err.Error(), s.Auth.ClientToken) {
		t.Fatal("the error shows the token")
	}
}
