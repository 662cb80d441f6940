package transit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// wrappingKeyDigest is the fingerprint computed apart from the package:
// SHA-256 of the DER that transit/wrapping_key sends.
func wrappingKeyDigest(t *testing.T, c *api.Client) string {
	t.Helper()
	s, err := c.Logical().Read("transit/wrapping_key")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(s.Data["public_key"].(string)))
	if block == nil {
		t.Fatal("wrapping key is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// An import wraps the secret only for the wrapping key it is told to
// expect; a re-created mount presents another one.
func TestImportOnlyForTheExpectedWrappingKey(t *testing.T) {
	v := startVault(t, testenv.VaultOptions{})
	ctx := context.Background()
	fp, err := transit.WrappingKeyFingerprint(ctx, transit.Config{Client: v.Client})
	if err != nil || fp != wrappingKeyDigest(t, v.Client) {
		t.Fatalf("fingerprint %q (%v), want %s", fp, err, wrappingKeyDigest(t, v.Client))
	}
	k, err := transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws", WrappingKey: fp}, keytest.AccessKeyID, keytest.Secret)
	if err != nil || k.WrappingKeyFingerprint() != fp {
		t.Fatalf("import for the expected key: %v, used %q", err, k.WrappingKeyFingerprint())
	}
	other := strings.Repeat("ab", 32)
	_, err = transit.Import(ctx, transit.Config{Client: v.Client, Name: "aws2", WrappingKey: other}, keytest.AccessKeyID, keytest.Secret)
	if !errors.Is(err, transit.ErrWrappingKeyChanged) || !strings.Contains(err.Error(), fp) {
		t.Fatalf("import for another key: %v", err)
	}
	if s, _ := v.Client.Logical().Read("transit/keys/aws2"); s != nil {
		t.Fatal("a refused import left a key")
	}
	opened, err := transit.Open(ctx, transit.Config{Client: v.Client, Name: "aws", WrappingKey: other}, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := opened.ImportVersion(ctx, "Z9yxWVut5rQPoNMlkJiHgFeDcBa0123456789abc"); !errors.Is(err, transit.ErrWrappingKeyChanged) || opened.Version() != 1 {
		t.Fatalf("new version for another key: %v, version %d", err, opened.Version())
	}

	if err := v.Client.Sys().Unmount("transit"); err != nil {
		t.Fatal(err)
	}
	if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	again, err := transit.WrappingKeyFingerprint(ctx, transit.Config{Client: v.Client})
	if err != nil || again == fp || again != wrappingKeyDigest(t, v.Client) {
		t.Fatalf("re-created mount: %q (%v), before %s", again, err, fp)
	}
}
