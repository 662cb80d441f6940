package transit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func tokenWith(t *testing.T, v *testenv.Vault, policy string) string {
	t.Helper()
	name := "p" + strings.ReplaceAll(t.Name(), "/", "-")
	if err := v.Client.Sys().PutPolicy(name, policy); err != nil {
		t.Fatal(err)
	}
	s, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// The properties are read with the plugin's own token, as transit reports
// them; a change made behind the plugin's back shows at the next read.
func TestReadProperties(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	if _, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret); err != nil {
		t.Fatal(err)
	}
	reader := tokenWith(t, v, `path "transit/keys/aws" { capabilities = ["read"] }`)
	cfg := transit.Config{Address: v.Addr, Token: reader, Name: "aws"}
	p, err := transit.ReadProperties(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Readable || p.Type != "hmac" || p.Exportable || p.AllowPlaintextBackup || !p.ImportedKey ||
		p.LatestVersion != 1 || p.MinDecryptionVersion != 1 || p.KeySize != 4+len(keytest.Secret) || p.AutoRotatePeriod != 0 {
		t.Fatalf("properties %+v", p)
	}
	if e := p.Exposures(); len(e) != 0 {
		t.Fatalf("exposures %v", e)
	}

	if _, err := v.Client.Logical().Write("transit/keys/aws/config", map[string]any{"exportable": true, "allow_plaintext_backup": true}); err != nil {
		t.Fatal(err)
	}
	p, err = transit.ReadProperties(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e := p.Exposures(); !p.Exportable || !p.AllowPlaintextBackup || len(e) != 2 || !strings.Contains(e[0], "exportable") || !strings.Contains(e[1], "allow_plaintext_backup") {
		t.Fatalf("after the key was made exportable: %+v %v", p, e)
	}
}

// A token that may only HMAC is an answer that says so, not a failure;
// a missing key likewise; transit down is an error.
func TestReadPropertiesUnreadable(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	if _, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret); err != nil {
		t.Fatal(err)
	}
	hmacOnly := tokenWith(t, v, `path "transit/hmac/aws/*" { capabilities = ["update"] }`)
	p, err := transit.ReadProperties(ctx, transit.Config{Address: v.Addr, Token: hmacOnly, Name: "aws"})
	if err != nil || p.Readable || !strings.Contains(p.Reason, "may not read transit/keys/aws") || len(p.Exposures()) != 0 {
		t.Fatalf("hmac-only token: %+v %v", p, err)
	}
	if strings.Contains(p.Reason, hmacOnly) {
		t.Fatal("the token in the answer")
	}
	p, err = transit.ReadProperties(ctx, transit.Config{Address: v.Addr, Token: v.Token, Name: "missing"})
	if err != nil || p.Readable || !strings.Contains(p.Reason, "no key transit/keys/missing") {
		t.Fatalf("missing key: %+v %v", p, err)
	}
	_, err = transit.ReadProperties(ctx, transit.Config{Address: "http://127.0.0.1:1", Token: hmacOnly, Name: "aws"})
	if err == nil || strings.Contains(err.Error(), hmacOnly) {
		t.Fatalf("transit down: %v", err)
	}
}
