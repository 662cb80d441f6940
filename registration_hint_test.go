package awshmac

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A value the registration does not allow is refused with the setting that
// would allow it and how to give it (vault plugin register -env, then a
// reload), never with the refused value.
func TestRegistrationRefusalsSayHowToAllow(t *testing.T) {
	e := newTestEnv(t)
	transit := with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "transit", "transit_token", "t")
	tinkVault := with(e.baseConfig(), "tink_vault_token", "t")
	for _, c := range []struct {
		name string
		data map[string]any
		env  string
	}{
		{"transit_address", with(transit, "transit_address", "https://transit.hostile.test:8200"), envTransitAddresses},
		{"tink_kek_uri", with(tinkVault, "tink_kek_uri", "hcvault://kek.hostile.test:8200/transit/keys/k", "tink_vault_address", "http://127.0.0.1:8200"), envKEKURIs},
		{"pkcs11_module", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "pkcs11", "pkcs11_module", "/opt/hostile/lib.so", "pkcs11_token_label", "t", "pkcs11_pin", "1"), envPKCS11Modules},
		{"sts_endpoint", with(e.baseConfig(), "sts_endpoint", "https://sts.hostile.test"), envSTSEndpoints},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config", c.data)
		text := errText(resp, err)
		if status(resp, err) != 400 || !strings.HasPrefix(text, c.name) || !strings.Contains(text, "vault plugin register -env "+c.env+"=") || !strings.Contains(text, "vault plugin reload") {
			t.Errorf("%s not allowed: %d %q, want 400 naming the field and the -env %s hint", c.name, status(resp, err), text, c.env)
		}
		if strings.Contains(text, "hostile") {
			t.Errorf("%s: the refusal echoes the value: %q", c.name, text)
		}
	}
	if keys := storageKeys(t, e.storage); len(keys) != 0 {
		t.Fatalf("refused writes stored %v", keys)
	}
}

// A config the registration no longer allows (the module dropped from
// AWS_HMAC_PKCS11_MODULES since the write) answers 503 on use, and the
// config read says which setting and how to allow it again.
func TestRegistrationNarrowedSinceTheWrite(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "config", e.storeConfig(t, "pkcs11"))
	e.mustWrite(t, "roles/signer", map[string]any{"sign_with": "key", "allowed_services": "sts",
		"allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	e.b.env.pkcs11Modules = nil // as a registration without the module, after a reload
	e.b.InvalidateKey(context.Background(), configStoragePath)
	resp, err := e.request(t, logical.UpdateOperation, "sign/signer", map[string]any{
		"url": "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"})
	if status(resp, err) != 503 {
		t.Fatalf("sign with the module no longer allowed: %d %s, want 503", status(resp, err), errText(resp, err))
	}
	read, err := e.request(t, logical.ReadOperation, "config", nil)
	if err != nil || read == nil || !strings.Contains(strings.Join(read.Warnings, "\n"), "vault plugin register -env "+envPKCS11Modules+"=") {
		t.Fatalf("config read does not say how to allow the module again: %v %v", read, err)
	}
}
