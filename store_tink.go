package awshmac

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
)

func init() {
	registerStore(&storeKind{
		name: "tink",
		fields: map[string]*framework.FieldSchema{
			"tink_kek_uri":       {Type: framework.TypeString, Description: "URI of the key-encryption key: hcvault://HOST:PORT/MOUNT/keys/NAME, gcp-kms://..., aws-kms://..., or insecure-local-kek://PATH for development."},
			"tink_keyset":        {Type: framework.TypeString, Description: "An existing encrypted keyset (Tink JSON) to use instead of importing. Never returned: a read shows its tink_keyset_fingerprint and tink_key_id."},
			"tink_vault_address": {Type: framework.TypeString, Description: "Vault address for an hcvault:// KEK."},
			"tink_vault_token":   {Type: framework.TypeString, Description: "Token allowed to encrypt and decrypt with the hcvault:// KEK; renewed by the plugin. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		},
		writeOnly: []string{"tink_vault_token"},
		newParams: func() storeParams { return new(tinkParams) },
	})
}

// tinkParams holds a Tink keyset encrypted by a KEK, and how to reach the KEK.
type tinkParams struct {
	KEKURI       string `json:"tink_kek_uri,omitempty"`
	Keyset       string `json:"tink_keyset,omitempty"` // encrypted keyset JSON
	VaultAddress string `json:"tink_vault_address,omitempty"`
	VaultToken   string `json:"tink_vault_token,omitempty"` // write-only
}

func (p *tinkParams) parse(d *framework.FieldData) error {
	parseStrings(d, map[string]*string{
		"tink_kek_uri": &p.KEKURI, "tink_keyset": &p.Keyset,
		"tink_vault_address": &p.VaultAddress, "tink_vault_token": &p.VaultToken,
	})
	return nil
}

func (p *tinkParams) applyDefaults(string) {}

func (p *tinkParams) validate(env *operatorEnv) error {
	switch {
	case p.KEKURI == "":
		return badInput("tink_kek_uri is required for the tink key store")
	case p.hcvault() && (p.VaultAddress == "" || p.VaultToken == ""):
		return badInput("tink_vault_address and tink_vault_token are required for an hcvault:// KEK")
	case !env.allowsKEK(p.KEKURI):
		return badInput("tink_kek_uri is not a KEK the plugin's registration allows (%s); %s", envKEKURIs, registrationHint(envKEKURIs, "hcvault://vault.example:8200/transit/keys/*"))
	}
	if err := validateURLs(p.endpoints()); err != nil {
		return err
	}
	if p.VaultAddress != "" && !env.allowsVaultAddress(p.VaultAddress) {
		return badInput("tink_vault_address is not an address the plugin's registration allows (%s; default: loopback only); %s", envTransitAddresses, registrationHint(envTransitAddresses, "https://vault.example:8200"))
	}
	return nil
}

func (p *tinkParams) endpoints() map[string]string {
	return map[string]string{"tink_vault_address": p.VaultAddress}
}

func (p *tinkParams) insecureUses() []string {
	if strings.HasPrefix(p.KEKURI, tink.LocalKEKScheme) {
		return []string{"tink_kek_uri is a cleartext local KEK (" + tink.LocalKEKScheme + ")"}
	}
	return nil
}

func (p *tinkParams) bindings() map[string][]string {
	return map[string][]string{"tink_vault_token": {"tink_vault_address", "tink_kek_uri", "tink_keyset"}}
}

func (p *tinkParams) hcvault() bool { return strings.HasPrefix(p.KEKURI, "hcvault://") }

// data never returns the encrypted keyset: with the KEK token the plugin
// holds (or a KMS key whoever reads config may use) it would decrypt the
// secret. Its fingerprint and primary key ID tell one keyset from another;
// a copy for backup is in Vault's own storage, behind its barrier.
func (p *tinkParams) data() map[string]any {
	return map[string]any{
		"tink_kek_uri":            p.KEKURI,
		"tink_keyset_fingerprint": keysetFingerprint(p.Keyset),
		"tink_key_id":             keysetPrimaryID(p.Keyset),
		"tink_vault_address":      p.VaultAddress,
	}
}

// keysetFingerprint is the SHA-256 of the encrypted keyset, hex.
func keysetFingerprint(keyset string) string {
	if keyset == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(keyset))
	return hex.EncodeToString(sum[:])
}

// keysetPrimaryID is the keyset's primary key ID, from its public info.
func keysetPrimaryID(keyset string) int64 {
	var k struct {
		KeysetInfo struct {
			PrimaryKeyID int64 `json:"primaryKeyId"`
		} `json:"keysetInfo"`
	}
	_ = json.Unmarshal([]byte(keyset), &k)
	return k.KeysetInfo.PrimaryKeyID
}

// vaultClient is the client for the hcvault:// KEK's Vault, built as the
// transit store builds its own (no redirects followed).
func (p *tinkParams) vaultClient() (*api.Client, error) {
	return transit.NewClient(transit.Config{Address: p.VaultAddress, Token: p.VaultToken})
}

func (p *tinkParams) config(accessKey string) (tink.Config, error) {
	// The access key ID is bound to the keyset: it cannot be moved to another.
	cfg := tink.Config{KEKURI: p.KEKURI, Keyset: []byte(p.Keyset), AssociatedData: []byte("vault-plugin-aws-hmac:" + accessKey)}
	if p.VaultAddress != "" {
		client, err := p.vaultClient()
		if err != nil {
			return tink.Config{}, err
		}
		cfg.VaultClient = client
	}
	return cfg, nil
}

func (p *tinkParams) open(ctx context.Context, accessKey string) (storeKey, error) {
	if p.Keyset == "" {
		return nil, errors.New("tink: no keyset: give secret_key to import one, or tink_keyset")
	}
	cfg, err := p.config(accessKey)
	if err != nil {
		return nil, err
	}
	return tink.Open(ctx, cfg, accessKey)
}

func (p *tinkParams) importSecret(ctx context.Context, accessKey, secret string) (storeKey, error) {
	cfg, err := p.config(accessKey)
	if err != nil {
		return nil, err
	}
	k, err := tink.Import(ctx, cfg, accessKey, secret)
	if err != nil {
		return nil, err
	}
	p.Keyset = string(k.Reference())
	return k, nil
}

func (p *tinkParams) forRotation(string) (storeParams, error) {
	n := *p
	n.Keyset = ""
	return &n, nil
}

// destroy has nothing to do: the old keyset existed only, encrypted, in
// the config it is dropped from.
func (p *tinkParams) destroy(context.Context, string) error { return nil }

func (p *tinkParams) vaultTokens() []vaultToken {
	if !p.hcvault() {
		return nil
	}
	return []vaultToken{{field: "tink_vault_token", client: p.vaultClient}}
}

// attest describes the stored keyset and what Tink cannot claim; see
// attestation.go.
func (p *tinkParams) attest(context.Context, storeKey, attestRequest) (*keyAttestation, error) {
	d, err := tink.Describe(p.KEKURI, []byte(p.Keyset))
	if err != nil {
		return nil, err
	}
	return &keyAttestation{statement: d.Statement(), evidence: d.Report()}, nil
}
