package awshmac

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

const (
	configStoragePath = "config"
	rolePrefix        = "roles/"

	storeTransit = "transit"
	storePKCS11  = "pkcs11"
	storeTPM     = "tpm"
	storeTink    = "tink"

	defaultRegion = "us-east-1"
)

var keyStores = []string{storeTransit, storePKCS11, storeTPM, storeTink}

// pluginConfig is what config stores. It holds the key store's reference
// (a key name, label, blob or encrypted keyset) and the credentials to reach
// the store — never the AWS secret, K or anything derived from them.
type pluginConfig struct {
	AccessKey string `json:"access_key"`
	KeyStore  string `json:"key_store"`

	TransitAddress    string `json:"transit_address,omitempty"`
	TransitMount      string `json:"transit_mount,omitempty"`
	TransitKeyName    string `json:"transit_key_name,omitempty"`
	TransitKeyVersion int    `json:"transit_key_version,omitempty"`
	TransitNamespace  string `json:"transit_namespace,omitempty"`
	TransitCACert     string `json:"transit_ca_cert,omitempty"`
	TransitToken      string `json:"transit_token,omitempty"` // write-only

	PKCS11Module      string `json:"pkcs11_module,omitempty"`
	PKCS11TokenLabel  string `json:"pkcs11_token_label,omitempty"`
	PKCS11TokenSerial string `json:"pkcs11_token_serial,omitempty"`
	PKCS11KeyLabel    string `json:"pkcs11_key_label,omitempty"`
	PKCS11KeyID       string `json:"pkcs11_key_id,omitempty"` // hex
	PKCS11MaxSessions int    `json:"pkcs11_max_sessions,omitempty"`
	PKCS11PIN         string `json:"pkcs11_pin,omitempty"` // write-only

	TPMDevice           string `json:"tpm_device,omitempty"`
	TPMParentHandle     uint32 `json:"tpm_parent_handle,omitempty"`
	TPMPersistentHandle uint32 `json:"tpm_persistent_handle,omitempty"`
	TPMPublic           []byte `json:"tpm_public,omitempty"`
	TPMPrivate          []byte `json:"tpm_private,omitempty"`
	TPMParentName       []byte `json:"tpm_parent_name,omitempty"`
	TPMPCRs             []uint `json:"tpm_pcrs,omitempty"`
	TPMPassword         string `json:"tpm_password,omitempty"` // write-only

	TinkKEKURI       string `json:"tink_kek_uri,omitempty"`
	TinkKeyset       string `json:"tink_keyset,omitempty"` // encrypted keyset JSON
	TinkVaultAddress string `json:"tink_vault_address,omitempty"`
	TinkVaultToken   string `json:"tink_vault_token,omitempty"` // write-only

	Region      string `json:"region"`
	STSEndpoint string `json:"sts_endpoint,omitempty"`
	STSRegion   string `json:"sts_region,omitempty"`
	IAMEndpoint string `json:"iam_endpoint,omitempty"`
	MaxRetries  int    `json:"max_retries"`
}

// stsRegion is the region STS requests are signed for.
func (c *pluginConfig) stsRegion() string {
	if c.STSRegion != "" {
		return c.STSRegion
	}
	return c.Region
}

func getConfig(ctx context.Context, s logical.Storage) (*pluginConfig, error) {
	entry, err := s.Get(ctx, configStoragePath)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	cfg := new(pluginConfig)
	if err := entry.DecodeJSON(cfg); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	return cfg, nil
}

func putConfig(ctx context.Context, s logical.Storage, cfg *pluginConfig) error {
	entry, err := logical.StorageEntryJSON(configStoragePath, cfg)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

var errNotConfigured = errors.New("the engine has no config: write aws-hmac/config first")
