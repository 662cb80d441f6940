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

// A revoked token, or one whose policy does not reach the key, wraps
// hmac.ErrAuth on open and on HMAC, so the plugin backs off; a missing key
// does not. No error carries the token.
func TestTokenRefusalIsErrAuth(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	if _, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret); err != nil {
		t.Fatal(err)
	}
	if err := v.Client.Sys().PutPolicy("use", `path "transit/*" { capabilities = ["read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	s, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"use"}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	token := s.Auth.ClientToken
	cfg := transit.Config{Address: v.Addr, Token: token, Name: "aws"}
	k, err := transit.Open(ctx, cfg, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transit.Open(ctx, transit.Config{Address: v.Addr, Token: token, Name: "missing"}, keytest.AccessKeyID); err == nil || errors.Is(err, hmac.ErrAuth) {
		t.Fatalf("missing key: %v, want an error that is not hmac.ErrAuth", err)
	}
	if err := v.Client.Auth().Token().RevokeOrphan(token); err != nil {
		t.Fatal(err)
	}
	_, hmacErr := k.HMAC(ctx, []byte("20261130"))
	_, openErr := transit.Open(ctx, cfg, keytest.AccessKeyID)
	for what, err := range map[string]error{"HMAC": hmacErr, "Open": openErr} {
		if !errors.Is(err, hmac.ErrAuth) || !strings.Contains(err.Error(), "HTTP 403") {
			t.Fatalf("%s with a revoked token: %v, want hmac.ErrAuth with HTTP 403", what, err)
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("%s's error shows the token", what)
		}
	}
}
