package awshmac

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
)

func init() {
	registerStore(&storeKind{
		name: "transit",
		fields: map[string]*framework.FieldSchema{
			"transit_address":     {Type: framework.TypeString, Description: "Address of the Vault whose transit engine holds the key, e.g. https://vault.example:8200."},
			"transit_mount":       {Type: framework.TypeString, Default: "transit", Description: "Mount path of the transit engine."},
			"transit_key_name":    {Type: framework.TypeString, Description: "Name of the transit key of type hmac. Default aws-hmac-<access_key>."},
			"transit_key_version": {Type: framework.TypeInt, Description: "Pin a transit key version; 0 uses the latest, reread periodically."},
			"transit_namespace":   {Type: framework.TypeString, Description: "Vault namespace of the transit mount."},
			"transit_ca_cert":     {Type: framework.TypeString, Description: "Path of a PEM CA certificate to verify the transit Vault's TLS certificate."},
			"transit_token":       {Type: framework.TypeString, Description: "Token allowed to update <mount>/hmac/<key> (and to import on first write); renewed by the plugin. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		},
		writeOnly: []string{"transit_token"},
		newParams: func() storeParams { return new(transitParams) },
	})
}

// transitParams locates a transit key of type hmac.
type transitParams struct {
	Address    string `json:"transit_address,omitempty"`
	Mount      string `json:"transit_mount,omitempty"`
	KeyName    string `json:"transit_key_name,omitempty"`
	KeyVersion int    `json:"transit_key_version,omitempty"`
	Namespace  string `json:"transit_namespace,omitempty"`
	CACert     string `json:"transit_ca_cert,omitempty"`
	Token      string `json:"transit_token,omitempty"` // write-only
	// WrappingKeyFingerprint is the mount's BYOK wrapping key, recorded at
	// the first import: later imports wrap a secret for that key only.
	WrappingKeyFingerprint string `json:"transit_wrapping_key_fingerprint,omitempty"`
}

func (p *transitParams) parse(d *framework.FieldData) error {
	mount := [3]string{p.Address, p.Namespace, p.Mount}
	parseStrings(d, map[string]*string{
		"transit_address": &p.Address, "transit_mount": &p.Mount, "transit_key_name": &p.KeyName,
		"transit_namespace": &p.Namespace, "transit_ca_cert": &p.CACert, "transit_token": &p.Token,
	})
	if v, ok := d.GetOk("transit_key_version"); ok {
		p.KeyVersion = v.(int)
	}
	if mount != [3]string{p.Address, p.Namespace, p.Mount} {
		p.WrappingKeyFingerprint = "" // another mount: its key is learnt at its first import
	}
	return nil
}

func (p *transitParams) applyDefaults(accessKey string) {
	if p.Mount == "" {
		p.Mount = "transit"
	}
	if p.KeyName == "" {
		p.KeyName = "aws-hmac-" + strings.ToLower(accessKey)
	}
}

func (p *transitParams) validate(env *operatorEnv) error {
	switch {
	case p.Address == "":
		return badInput("transit_address is required for the transit key store")
	case p.Token == "":
		return badInput("transit_token is required for the transit key store")
	case p.KeyVersion < 0:
		return badInput("transit_key_version must not be negative")
	}
	if err := validateURLs(p.endpoints()); err != nil {
		return err
	}
	if !env.allowsVaultAddress(p.Address) {
		return badInput("transit_address is not an address the plugin's registration allows (%s; default: loopback only); %s", envTransitAddresses, registrationHint(envTransitAddresses, "https://vault.example:8200"))
	}
	return nil
}

func (p *transitParams) endpoints() map[string]string {
	return map[string]string{"transit_address": p.Address}
}

func (p *transitParams) insecureUses() []string { return nil }

func (p *transitParams) bindings() map[string][]string {
	return map[string][]string{"transit_token": {"transit_address", "transit_mount", "transit_namespace", "transit_ca_cert", "transit_key_name"}}
}

func (p *transitParams) data() map[string]any {
	return map[string]any{
		"transit_address":     p.Address,
		"transit_mount":       p.Mount,
		"transit_key_name":    p.KeyName,
		"transit_key_version": p.KeyVersion,
		"transit_namespace":   p.Namespace,
		"transit_ca_cert":     p.CACert,

		"transit_wrapping_key_fingerprint": p.WrappingKeyFingerprint,
	}
}

func (p *transitParams) config() transit.Config {
	return transit.Config{
		Address: p.Address, Token: p.Token, Namespace: p.Namespace, CACert: p.CACert,
		Mount: p.Mount, Name: p.KeyName, Version: p.KeyVersion, WrappingKey: p.WrappingKeyFingerprint,
	}
}

func (p *transitParams) open(ctx context.Context, accessKey string) (storeKey, error) {
	return transit.Open(ctx, p.config(), accessKey)
}

func (p *transitParams) importSecret(ctx context.Context, accessKey, secret string) (storeKey, error) {
	k, err := transit.Import(ctx, p.config(), accessKey, secret)
	if errors.Is(err, transit.ErrWrappingKeyChanged) {
		return nil, wrappingKeyChanged(err)
	}
	if err != nil {
		return nil, err
	}
	p.WrappingKeyFingerprint = k.WrappingKeyFingerprint()
	return k, nil
}

// checkImport refuses, before a rotation makes a key in IAM, a mount whose
// wrapping key is not the recorded one.
func (p *transitParams) checkImport(ctx context.Context) error {
	if p.WrappingKeyFingerprint == "" {
		return nil // recorded by the next import
	}
	fp, err := transit.WrappingKeyFingerprint(ctx, p.config())
	if err != nil {
		return &storeError{store: "transit", err: err}
	}
	if fp != p.WrappingKeyFingerprint {
		return wrappingKeyChanged(fmt.Errorf("%w: mount %q at %s presents wrapping key %s, not %s", transit.ErrWrappingKeyChanged, p.Mount, p.Address, fp, p.WrappingKeyFingerprint))
	}
	return nil
}

// wrappingKeyChanged is the operator's to resolve: a transit re-created on
// purpose is accepted by deleting the config and writing it again.
func wrappingKeyChanged(err error) error {
	return badInput("transit_wrapping_key_fingerprint: the transit wrapping key changed, so no secret is wrapped for it (%v); if transit was re-created on purpose, delete the config and write it again", err)
}

func (p *transitParams) forRotation(newAccessKey string) (storeParams, error) {
	n := *p
	n.KeyName, n.KeyVersion = "aws-hmac-"+strings.ToLower(newAccessKey), 0
	return &n, nil
}

// destroy deletes the old transit key; the token needs the rights on
// <mount>/keys/<name>/config and <mount>/keys/<name> to do so.
func (p *transitParams) destroy(ctx context.Context, _ string) error {
	return transit.Destroy(ctx, p.config())
}

func (p *transitParams) vaultTokens() []vaultToken {
	return []vaultToken{{field: "transit_token", client: func() (*api.Client, error) {
		return transit.NewClient(p.config())
	}}}
}

// attest reads the key's flags and versions with the plugin's own token;
// see attestation.go.
func (p *transitParams) attest(ctx context.Context, _ storeKey, _ attestRequest) (*keyAttestation, error) {
	props, err := transit.ReadProperties(ctx, p.config())
	if err != nil {
		return nil, err
	}
	return &keyAttestation{statement: props.Statement(p.Mount, p.KeyName), evidence: props.Report(), exposures: props.Exposures()}, nil
}
