package awshmac

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
)

// storeKey is a key store's key: it HMACs and releases its resources.
type storeKey interface {
	hmac.Key
	Close() error
}

// keyStoreError marks a failure of the key store itself (down, refusing),
// as opposed to a caller's mistake; the paths answer it with a 5xx.
type keyStoreError struct {
	store string
	err   error
}

func (e *keyStoreError) Error() string { return fmt.Sprintf("key store %s: %v", e.store, e.err) }
func (e *keyStoreError) Unwrap() error { return e.err }

func (c *pluginConfig) transitConfig() transit.Config {
	return transit.Config{
		Address: c.TransitAddress, Token: c.TransitToken, Namespace: c.TransitNamespace,
		CACert: c.TransitCACert, Mount: c.TransitMount, Name: c.TransitKeyName, Version: c.TransitKeyVersion,
	}
}

func (c *pluginConfig) pkcs11Config() (pkcs11.Config, error) {
	id, err := hex.DecodeString(c.PKCS11KeyID)
	if err != nil {
		return pkcs11.Config{}, fmt.Errorf("pkcs11_key_id is not hex: %w", err)
	}
	return pkcs11.Config{
		Module: c.PKCS11Module, TokenLabel: c.PKCS11TokenLabel, TokenSerial: c.PKCS11TokenSerial, PIN: c.PKCS11PIN,
		KeyLabel: c.PKCS11KeyLabel, KeyID: id, MaxSessions: c.PKCS11MaxSessions,
	}, nil
}

func (c *pluginConfig) tpmConfig() tpm.Config {
	return tpm.Config{
		Device: c.TPMDevice, Parent: c.TPMParentHandle, Password: c.TPMPassword, PersistentHandle: c.TPMPersistentHandle,
		Public: c.TPMPublic, Private: c.TPMPrivate, ParentName: c.TPMParentName, PCRs: c.TPMPCRs,
	}
}

func (c *pluginConfig) tinkConfig() (tink.Config, error) {
	cfg := tink.Config{KEKURI: c.TinkKEKURI, Keyset: []byte(c.TinkKeyset), AssociatedData: []byte("vault-plugin-aws-hmac:" + c.AccessKey)}
	if c.TinkVaultAddress != "" {
		apiCfg := api.DefaultConfig()
		apiCfg.Address = c.TinkVaultAddress
		client, err := api.NewClient(apiCfg)
		if err != nil {
			return tink.Config{}, err
		}
		client.SetToken(c.TinkVaultToken)
		cfg.VaultClient = client
	}
	return cfg, nil
}

// openKey opens the configured key from its reference.
func openKey(ctx context.Context, c *pluginConfig) (storeKey, error) {
	k, err := openOrImport(ctx, c, "")
	if err != nil {
		return nil, &keyStoreError{store: c.KeyStore, err: err}
	}
	return reportingKey{storeKey: k, store: c.KeyStore}, nil
}

// importKey imports secret into the configured store and records the
// store's reference in c.
func importKey(ctx context.Context, c *pluginConfig, secret string) (storeKey, error) {
	k, err := openOrImport(ctx, c, secret)
	if err != nil {
		return nil, err
	}
	return reportingKey{storeKey: k, store: c.KeyStore}, nil
}

// reportingKey marks its store's HMAC failures as key-store errors, so
// that the paths answer them with a 503 naming the store.
type reportingKey struct {
	storeKey
	store string
}

func (k reportingKey) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	mac, err := k.storeKey.HMAC(ctx, msg)
	if err != nil && ctx.Err() == nil {
		return nil, &keyStoreError{store: k.store, err: err}
	}
	return mac, err
}

// KeyIdentity passes the store key's identity through, so derived keys are
// cached per key and version.
func (k reportingKey) KeyIdentity() string {
	if id, ok := k.storeKey.(hmac.Identified); ok {
		return id.KeyIdentity()
	}
	return fmt.Sprintf("%s:%p", k.store, k.storeKey)
}

func openOrImport(ctx context.Context, c *pluginConfig, secret string) (storeKey, error) {
	switch c.KeyStore {
	case storeTransit:
		if secret == "" {
			return transit.Open(ctx, c.transitConfig(), c.AccessKey)
		}
		return transit.Import(ctx, c.transitConfig(), c.AccessKey, secret)
	case storePKCS11:
		cfg, err := c.pkcs11Config()
		if err != nil {
			return nil, err
		}
		if secret == "" {
			return pkcs11.Open(cfg, c.AccessKey)
		}
		k, err := pkcs11.Import(cfg, c.AccessKey, secret)
		if err != nil {
			return nil, err
		}
		c.PKCS11KeyID = hex.EncodeToString(k.KeyID())
		return k, nil
	case storeTPM:
		if secret == "" {
			return tpm.Open(c.tpmConfig(), c.AccessKey)
		}
		k, err := tpm.Import(c.tpmConfig(), c.AccessKey, secret)
		if err != nil {
			return nil, err
		}
		ref := k.Reference()
		c.TPMPublic, c.TPMPrivate, c.TPMParentName = ref.Public, ref.Private, ref.ParentName
		return k, nil
	case storeTink:
		cfg, err := c.tinkConfig()
		if err != nil {
			return nil, err
		}
		if secret == "" {
			return tink.Open(ctx, cfg, c.AccessKey)
		}
		k, err := tink.Import(ctx, cfg, c.AccessKey, secret)
		if err != nil {
			return nil, err
		}
		c.TinkKeyset = string(k.Reference())
		return k, nil
	}
	return nil, fmt.Errorf("unknown key store %q", c.KeyStore)
}
