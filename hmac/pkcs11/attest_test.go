package pkcs11_test

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	p11 "github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

func attest(t *testing.T, k *p11.Key) *p11.Attestation {
	t.Helper()
	a, err := k.Attest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantAttributes(t *testing.T, a *p11.Attestation, want map[string]bool) {
	t.Helper()
	for name, v := range want {
		got, ok := a.Attributes[name]
		if !ok || got != v {
			t.Errorf("%s = %v (reported %v), want %v; unreported: %v", name, got, ok, v, a.Unreported)
		}
	}
}

// An imported key reports what the token says of any key created with
// C_CreateObject: sensitive and not extractable, but never-extractable,
// always-sensitive and local are false, since its value came from outside.
func TestAttestImportedKey(t *testing.T) {
	hsm, cfg := setup(t)
	k := importKey(t, cfg)
	a := attest(t, k)
	wantAttributes(t, a, map[string]bool{
		"CKA_SENSITIVE": true, "CKA_EXTRACTABLE": false,
		"CKA_NEVER_EXTRACTABLE": false, "CKA_ALWAYS_SENSITIVE": false, "CKA_LOCAL": false,
	})
	if len(a.Unreported) != 0 || len(a.Exposures()) != 0 {
		t.Fatalf("unreported %v, exposures %v", a.Unreported, a.Exposures())
	}
	if a.Token.Label != hsm.Label || a.Token.SerialNumber == "" || !strings.Contains(a.Token.ManufacturerID, "SoftHSM") || a.Token.Model == "" {
		t.Fatalf("token %+v", a.Token)
	}
	if a.KeyLabel != cfg.KeyLabel || string(a.KeyID) != string(k.KeyID()) {
		t.Fatalf("key %q %x", a.KeyLabel, a.KeyID)
	}
	keytest.NoSecretIn(t, "the attestation", []byte(a.Token.Label+a.Token.SerialNumber+a.KeyLabel+string(a.KeyID)))
	keytest.CheckSuite(t, k) // the sessions still sign
}

// A key generated inside the token reports local, never-extractable and
// always-sensitive: the same reader, other answers.
func TestAttestGeneratedKey(t *testing.T) {
	hsm, cfg := setup(t)
	withRawSession(t, hsm, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) {
		_, err := ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "generated"),
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	cfg.KeyLabel = "generated"
	k, err := p11.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	wantAttributes(t, attest(t, k), map[string]bool{
		"CKA_SENSITIVE": true, "CKA_EXTRACTABLE": false,
		"CKA_NEVER_EXTRACTABLE": true, "CKA_ALWAYS_SENSITIVE": true, "CKA_LOCAL": true,
	})
}

// A key that is neither sensitive nor unextractable is reported as it is,
// and named an exposure.
func TestAttestExposedKey(t *testing.T) {
	hsm, cfg := setup(t)
	withRawSession(t, hsm, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) {
		_, err := ctx.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "exposed"),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("AWS4"+keytest.Secret)),
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	cfg.KeyLabel = "exposed"
	k, err := p11.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	a := attest(t, k)
	wantAttributes(t, a, map[string]bool{"CKA_SENSITIVE": false, "CKA_EXTRACTABLE": true})
	if e := a.Exposures(); len(e) != 2 || !strings.Contains(e[0], "CKA_SENSITIVE") || !strings.Contains(e[1], "CKA_EXTRACTABLE") {
		t.Fatalf("exposures %v", e)
	}
}

// Attest on a closed key fails rather than reopening it.
func TestAttestClosedKey(t *testing.T) {
	_, cfg := setup(t)
	k := importKey(t, cfg)
	k.Close()
	if _, err := k.Attest(context.Background()); err == nil {
		t.Fatal("Attest on a closed key")
	}
}
