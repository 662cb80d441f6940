package awshmac

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

func pathConfig(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields:         configFields(),
		ExistenceCheck: b.configExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Configure the AWS key and its key store.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				Responses:                   noContent,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Change the configuration; fields left out keep their values.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				Responses:                   noContent,
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigRead,
				Summary:      "Read the configuration, without write-only fields.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "configuration"},
				Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK"}}},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigDelete,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Delete the configuration. The key stays in its store.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "configuration"},
				Responses:                   noContent,
			},
		},
		HelpSynopsis:    pathConfigHelpSyn,
		HelpDescription: pathConfigHelpDesc,
	}
}

// configFields is the common fields, every key store's, and the two that
// are only for a write.
func configFields() map[string]*framework.FieldSchema {
	fields := commonFields()
	maps.Copy(fields, storeFields())
	fields["secret_key"] = &framework.FieldSchema{
		Type:         framework.TypeString,
		Description:  "AWS secret access key, imported into the key store on this write and then dropped. Write-only. Omit it when the key is already in the store.",
		DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
	}
	fields["skip_verification"] = &framework.FieldSchema{
		Type:        framework.TypeBool,
		Description: "Do not prove the key with STS GetCallerIdentity on this write.",
	}
	fields["rotate_on_import"] = &framework.FieldSchema{
		Type:        framework.TypeBool,
		Description: "After importing secret_key and proving it, rotate at once: the secret a person pasted is then deleted, and no person knows a valid one.",
	}
	return fields
}

func (b *backend) configExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := b.config(ctx, req.Storage)
	return cfg != nil, err
}

// configWrite is a parsed config write.
type configWrite struct {
	cfg      *pluginConfig
	secret   string
	verify   bool
	warnings []string
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// One write at a time, so the engine installed is the one stored.
	b.configLock.Lock()
	defer b.configLock.Unlock()
	existing, err := b.config(ctx, req.Storage)
	if err != nil {
		return b.respond(nil, err)
	}
	w, err := parseConfigWrite(existing, d, &b.env)
	if err != nil {
		return b.respond(nil, err)
	}
	if err := b.applyConfig(ctx, req.Storage, w); err != nil {
		return b.respond(nil, err)
	}
	if w.secret != "" && d.Get("rotate_on_import").(bool) {
		resp, err := b.rotateRoot(ctx, req.Storage)
		if err == nil {
			for _, warning := range w.warnings {
				resp.AddWarning(warning)
			}
		}
		return b.respond(resp, err)
	}
	return b.respond(withWarnings(w.warnings), nil)
}

// withWarnings is an empty response carrying warnings, or none at all.
func withWarnings(warnings []string) *logical.Response {
	if len(warnings) == 0 {
		return nil
	}
	resp := &logical.Response{}
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	return resp
}

// parseConfigWrite applies the fields present in d to a copy of the
// existing config and validates the result.
func parseConfigWrite(existing *pluginConfig, d *framework.FieldData, env *operatorEnv) (*configWrite, error) {
	cfg := &pluginConfig{}
	if existing != nil {
		var err error
		if cfg, err = existing.clone(); err != nil {
			return nil, err
		}
	}
	previousStore := cfg.KeyStore
	cfg.commonConfig.parse(d)
	cfg.commonConfig.applyDefaults()
	if err := cfg.commonConfig.validate(env); err != nil {
		return nil, err
	}
	if cfg.store == nil || cfg.KeyStore != previousStore {
		cfg.store = storeKinds[cfg.KeyStore].newParams()
	}
	if err := cfg.store.parse(d); err != nil {
		return nil, err
	}
	cfg.store.applyDefaults(cfg.AccessKey)
	if existing != nil && existing.KeyStore == cfg.KeyStore {
		if err := checkBindings(existing.store, cfg.store, d); err != nil {
			return nil, err
		}
	}
	if err := cfg.store.validate(env); err != nil {
		return nil, err
	}
	warnings, err := env.check(cfg)
	if err != nil {
		return nil, err
	}
	if _, ok := d.GetOk("rotation_period"); ok || (existing == nil && cfg.RotationPeriod > 0) {
		cfg.RotationBase = time.Now().UTC() // the schedule starts now
	}
	secret := strings.TrimSpace(d.Get("secret_key").(string))
	if secret != "" && len(secret) != 40 && (len(secret) < 16 || len(secret) > 128) {
		return nil, badInput("secret_key does not look like an AWS secret access key")
	}
	return &configWrite{cfg: cfg, secret: secret, verify: !d.Get("skip_verification").(bool), warnings: warnings}, nil
}

// applyConfig opens or imports the key, proves it, stores the config and
// installs its engine. On failure nothing is stored and the engine in use
// stays.
func (b *backend) applyConfig(ctx context.Context, s logical.Storage, w *configWrite) error {
	key, err := b.configuredKey(ctx, w)
	if err != nil {
		return err
	}
	e, err := b.newEngine(w.cfg, key)
	if err != nil {
		return err
	}
	if err := b.putConfig(ctx, s, w.cfg); err != nil {
		e.retire()
		return err
	}
	b.install(e)
	b.keyGate().reset() // the store took this config's credential
	return nil
}

// configuredKey imports the secret (proved first, so a wrong one leaves
// nothing behind) or opens the named key, and proves the result.
func (b *backend) configuredKey(ctx context.Context, w *configWrite) (storeKey, error) {
	if w.secret != "" && w.verify {
		if err := verifyKey(ctx, w.cfg, hmac.NewStaticKey(w.cfg.AccessKey, w.secret)); err != nil {
			return nil, err
		}
	}
	var key storeKey
	var err error
	if w.secret != "" {
		key, err = b.importStoreKey(ctx, w.cfg, w.secret)
	} else {
		key, err = b.openConfiguredKey(ctx, w.cfg)
	}
	var se *storeError
	if errors.As(err, &se) {
		return nil, se.forOperator()
	}
	if err != nil {
		return nil, err
	}
	if w.verify {
		if err := verifyKey(ctx, w.cfg, key); err != nil {
			_ = key.Close()
			return nil, err
		}
	}
	return key, nil
}

// verifyKey proves key with STS GetCallerIdentity; a refusal is the
// caller's to fix.
func verifyKey(ctx context.Context, cfg *pluginConfig, key hmac.Key) error {
	client, err := stscreds.NewSTSClient(cfg.awsConfig(key, sigv4.NewSigner()))
	if err != nil {
		return badInput("access_key: %s", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, cfg.stsTimeout())
	defer cancel()
	if _, err := client.GetCallerIdentity(callCtx, &sts.GetCallerIdentityInput{}); err != nil {
		err = classifySTS(ctx, "GetCallerIdentity", cfg.stsTimeout(), err)
		var refused *stsError
		if errors.As(err, &refused) && refused.status() == http.StatusBadRequest {
			return badInput("the key failed STS GetCallerIdentity (set skip_verification to skip this check): %s", refused.Error())
		}
		return err
	}
	return nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil || cfg == nil {
		return b.respond(nil, err)
	}
	data := cfg.commonConfig.data()
	maps.Copy(data, cfg.store.data())
	resp := &logical.Response{Data: data}
	if e := b.current.Load(); e != nil && e.cfg == cfg && e.acquire() {
		maps.Copy(data, e.tokenStatus())
		if !cfg.AccessKeyCreated.IsZero() {
			data["access_key_created"] = formatTime(cfg.AccessKeyCreated)
		} else if created, err := e.keyCreated(ctx); err == nil {
			data["access_key_created"] = formatTime(created)
		} else {
			resp.AddWarning("access_key_created: IAM could not be asked: " + err.Error())
		}
		e.release()
	}
	warnings, err := b.env.check(cfg)
	if err != nil {
		warnings = []string{err.Error()}
	}
	// A registration changed since the write: requests answer 503, this says why.
	if err := cfg.store.validate(&b.env); err != nil {
		warnings = append(warnings, err.Error())
	}
	if refused := b.keyGate().status(cfg); refused != nil {
		maps.Copy(data, refused)
		warnings = append(warnings, fmt.Sprintf("the %s key store refuses the plugin's credential (key_store_refused); requests answer 503 without asking it until key_store_retry_at; write the config with the right credential to retry at once", cfg.KeyStore))
	}
	warnings = append(warnings, b.attestationWarnings(ctx, req.Storage, cfg)...)
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	return b.respond(resp, nil)
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.configLock.Lock()
	defer b.configLock.Unlock()
	if err := b.putConfig(ctx, req.Storage, nil); err != nil {
		return b.respond(nil, err)
	}
	b.install(nil)
	b.keyGate().reset()
	return b.respond(nil, nil)
}

const pathConfigHelpSyn = `Configure the AWS access key and the key store that holds its secret.`

const pathConfigHelpDesc = `
The secret access key is imported into the chosen key store once, on the write
that carries secret_key, and never stored or returned: transit (a Vault transit
key of type hmac), pkcs11 (an HSM), tpm (a TPM 2.0) or tink (a keyset encrypted
by a KMS key). To use a key already in the store, leave secret_key out and name
the key (transit_key_name, pkcs11_key_label/pkcs11_key_id, tpm_public and
tpm_private or tpm_persistent_handle, tink_keyset).

Unless skip_verification is set, a write proves the key with STS
GetCallerIdentity. PINs, tokens and passwords are write-only; the tokens the
plugin holds for transit and for an hcvault:// KEK are renewed before they
expire, and a read shows their TTL (<field>_ttl, <field>_renewable) and any
problem (<field>_warning). sts_timeout bounds every STS call. Writes are
applied one at a time; each replaces the cached key, clients and derived
signing keys once the requests using them have finished.

A stored credential is bound to where it goes: a write that changes the
transit address, mount, namespace, CA or key name, the Tink KEK or its Vault,
the PKCS#11 module or token, or the TPM device, parent or blobs must give the
token, PIN or password again. Transit and KEK Vault addresses, KEK URIs and
STS/IAM hosts must be allowed by the plugin's registration
(AWS_HMAC_TRANSIT_ADDRESSES, AWS_HMAC_KEK_URIS, AWS_HMAC_STS_ENDPOINTS). A
read returns the Tink keyset's fingerprint and key ID, never the keyset, and
transit_wrapping_key_fingerprint: the transit wrapping key the first import
used, which every later import must match.
`
