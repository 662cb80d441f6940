package tink_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

// The description comes from the stored keyset alone, without the KEK:
// one raw HMAC key, primary, and the digest of what is stored.
func TestDescribe(t *testing.T) {
	kek := filepath.Join(t.TempDir(), "kek.json")
	if err := tink.NewLocalKEK(kek); err != nil {
		t.Fatal(err)
	}
	uri := tink.LocalKEKScheme + kek
	k, err := tink.Import(context.Background(), tink.Config{KEKURI: uri, AssociatedData: []byte("ad")}, keytest.AccessKeyID, keytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	stored := k.Reference()
	d, err := tink.Describe(uri, stored)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(stored)
	if d.KEKScheme != "insecure-local-kek" || len(d.Keys) != 1 || d.Keys[0].ID != d.PrimaryKeyID ||
		!strings.HasSuffix(d.Keys[0].TypeURL, "HmacKey") || d.Keys[0].Status != "ENABLED" || d.Keys[0].OutputPrefix != "RAW" ||
		string(d.SHA256) != string(sum[:]) {
		t.Fatalf("description %+v", d)
	}
	if _, err := tink.Describe(uri, []byte("not a keyset")); err == nil {
		t.Fatal("a broken keyset described")
	}
}
