package awshmac

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

var (
	accessKeyRe = regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{3,128}$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	hexRe       = regexp.MustCompile(`^([0-9a-fA-F]{2})*$`)
)

// writeOnlyFields are accepted on write and never returned.
var writeOnlyFields = []string{"secret_key", "transit_token", "pkcs11_pin", "tpm_password", "tink_vault_token"}

func pathConfig(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"access_key": {Type: framework.TypeString, Description: "AWS access key ID of the key held in the key store. Required."},
			"secret_key": {Type: framework.TypeString, Description: "AWS secret access key, imported into the key store on this write and then dropped. Write-only. Omit it when the key is already in the store.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
			"key_store": {Type: framework.TypeString, Default: storeTransit, AllowedValues: []any{storeTransit, storePKCS11, storeTPM, storeTink},
				Description: "Where the secret lives: transit, pkcs11, tpm or tink."},
			"skip_verification": {Type: framework.TypeBool, Description: "Do not prove the key with STS GetCallerIdentity on this write."},

			"transit_address":     {Type: framework.TypeString, Description: "Address of the Vault whose transit engine holds the key, e.g. https://vault.example:8200."},
			"transit_mount":       {Type: framework.TypeString, Default: "transit", Description: "Mount path of the transit engine."},
			"transit_key_name":    {Type: framework.TypeString, Description: "Name of the transit key of type hmac. Default aws-hmac-<access_key>."},
			"transit_key_version": {Type: framework.TypeInt, Description: "Pin a transit key version; 0 uses the latest."},
			"transit_namespace":   {Type: framework.TypeString, Description: "Vault namespace of the transit mount."},
			"transit_ca_cert":     {Type: framework.TypeString, Description: "Path of a PEM CA certificate to verify the transit Vault's TLS certificate."},
			"transit_token":       {Type: framework.TypeString, Description: "Token allowed to update <mount>/hmac/<key> (and to import on first write). Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},

			"pkcs11_module":       {Type: framework.TypeString, Description: "Path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so."},
			"pkcs11_token_label":  {Type: framework.TypeString, Description: "Label of the token holding the key."},
			"pkcs11_token_serial": {Type: framework.TypeString, Description: "Serial number of the token, to tell tokens with the same label apart."},
			"pkcs11_key_label":    {Type: framework.TypeString, Description: "CKA_LABEL of the key. Default aws-hmac-<access_key>."},
			"pkcs11_key_id":       {Type: framework.TypeString, Description: "CKA_ID of the key, in hex. Set on import."},
			"pkcs11_max_sessions": {Type: framework.TypeInt, Description: "Most sessions opened for signing. Default 8."},
			"pkcs11_pin":          {Type: framework.TypeString, Description: "User PIN of the token. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},

			"tpm_device":            {Type: framework.TypeString, Description: "TPM to use: /dev/tpmrm0 (default) or tcp://HOST:PORT for swtpm."},
			"tpm_parent_handle":     {Type: framework.TypeString, Description: "Persistent parent handle in hex (e.g. 0x81000001); default: the standard ECC storage root key."},
			"tpm_persistent_handle": {Type: framework.TypeString, Description: "Keep the key at this persistent handle (hex) instead of as blobs in Vault storage."},
			"tpm_public":            {Type: framework.TypeString, Description: "Public blob of an existing key, base64 (as returned on read)."},
			"tpm_private":           {Type: framework.TypeString, Description: "Private blob of an existing key, base64; wrapped by the TPM and useless elsewhere."},
			"tpm_pcrs":              {Type: framework.TypeCommaIntSlice, Description: "SHA-256 PCRs to seal the key to on import (e.g. 7): it then works only while they hold their current values."},
			"tpm_password":          {Type: framework.TypeString, Description: "Authorisation value of the key. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},

			"tink_kek_uri":       {Type: framework.TypeString, Description: "URI of the key-encryption key: hcvault://HOST:PORT/MOUNT/keys/NAME, gcp-kms://..., aws-kms://..., or insecure-local-kek://PATH for development."},
			"tink_keyset":        {Type: framework.TypeString, Description: "An existing encrypted keyset (Tink JSON) to use instead of importing."},
			"tink_vault_address": {Type: framework.TypeString, Description: "Vault address for an hcvault:// KEK."},
			"tink_vault_token":   {Type: framework.TypeString, Description: "Token allowed to encrypt and decrypt with the hcvault:// KEK. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},

			"region":       {Type: framework.TypeString, Default: defaultRegion, Description: "Default AWS region for signing and STS."},
			"sts_endpoint": {Type: framework.TypeString, Description: "STS endpoint URL; default: the regional endpoint of sts_region."},
			"sts_region":   {Type: framework.TypeString, Description: "Region STS requests are signed for; default: region."},
			"iam_endpoint": {Type: framework.TypeString, Description: "IAM endpoint URL."},
			"max_retries":  {Type: framework.TypeInt, Default: 0, Description: "Retries of a throttled or failed STS call; 0: the SDK default, -1: none."},
		},
		ExistenceCheck: b.configExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.CreateOperation: &framework.PathOperation{Callback: b.pathConfigWrite, Summary: "Configure the AWS key and its key store.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"}, Responses: noContent},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathConfigWrite, Summary: "Change the configuration; fields left out keep their values.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"}, Responses: noContent},
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathConfigRead, Summary: "Read the configuration, without write-only fields.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "configuration"},
				Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK"}}}},
			logical.DeleteOperation: &framework.PathOperation{Callback: b.pathConfigDelete, Summary: "Delete the configuration. The key stays in its store.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "configuration"}, Responses: noContent},
		},
		HelpSynopsis:    pathConfigHelpSyn,
		HelpDescription: pathConfigHelpDesc,
	}
}

var noContent = map[int][]framework.Response{http.StatusNoContent: {{Description: "No content"}}}

func (b *backend) configExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := getConfig(ctx, req.Storage)
	return cfg != nil, err
}

// applyConfigFields copies the fields present in d onto cfg and validates
// the result. It returns a caller-facing message on bad input.
func applyConfigFields(cfg *pluginConfig, d *framework.FieldData, create bool) string {
	str := func(name string, dst *string) {
		if v, ok := d.GetOk(name); ok {
			*dst = strings.TrimSpace(v.(string))
		} else if create {
			if def, ok := d.Schema[name].Default.(string); ok && *dst == "" {
				*dst = def
			}
		}
	}
	str("access_key", &cfg.AccessKey)
	str("key_store", &cfg.KeyStore)
	str("transit_address", &cfg.TransitAddress)
	str("transit_mount", &cfg.TransitMount)
	str("transit_key_name", &cfg.TransitKeyName)
	str("transit_namespace", &cfg.TransitNamespace)
	str("transit_ca_cert", &cfg.TransitCACert)
	str("transit_token", &cfg.TransitToken)
	str("pkcs11_module", &cfg.PKCS11Module)
	str("pkcs11_token_label", &cfg.PKCS11TokenLabel)
	str("pkcs11_token_serial", &cfg.PKCS11TokenSerial)
	str("pkcs11_key_label", &cfg.PKCS11KeyLabel)
	str("pkcs11_key_id", &cfg.PKCS11KeyID)
	str("pkcs11_pin", &cfg.PKCS11PIN)
	str("tpm_device", &cfg.TPMDevice)
	str("tpm_password", &cfg.TPMPassword)
	str("tink_kek_uri", &cfg.TinkKEKURI)
	str("tink_keyset", &cfg.TinkKeyset)
	str("tink_vault_address", &cfg.TinkVaultAddress)
	str("tink_vault_token", &cfg.TinkVaultToken)
	str("region", &cfg.Region)
	str("sts_endpoint", &cfg.STSEndpoint)
	str("sts_region", &cfg.STSRegion)
	str("iam_endpoint", &cfg.IAMEndpoint)
	if v, ok := d.GetOk("transit_key_version"); ok {
		cfg.TransitKeyVersion = v.(int)
	}
	if v, ok := d.GetOk("pkcs11_max_sessions"); ok {
		cfg.PKCS11MaxSessions = v.(int)
	}
	if v, ok := d.GetOk("max_retries"); ok {
		cfg.MaxRetries = v.(int)
	}
	for name, dst := range map[string]*uint32{"tpm_parent_handle": &cfg.TPMParentHandle, "tpm_persistent_handle": &cfg.TPMPersistentHandle} {
		if v, ok := d.GetOk(name); ok {
			s := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(v.(string))), "0x")
			if s == "" {
				*dst = 0
				continue
			}
			n, err := strconv.ParseUint(s, 16, 32)
			if err != nil {
				return name + " must be a hex TPM handle such as 0x81000001"
			}
			*dst = uint32(n)
		}
	}
	if v, ok := d.GetOk("tpm_pcrs"); ok {
		cfg.TPMPCRs = nil
		for _, pcr := range v.([]int) {
			if pcr < 0 || pcr > 23 {
				return "tpm_pcrs must be PCR numbers from 0 to 23"
			}
			cfg.TPMPCRs = append(cfg.TPMPCRs, uint(pcr))
		}
	}
	for name, dst := range map[string]*[]byte{"tpm_public": &cfg.TPMPublic, "tpm_private": &cfg.TPMPrivate} {
		if v, ok := d.GetOk(name); ok {
			blob, err := base64.StdEncoding.DecodeString(v.(string))
			if err != nil {
				return name + " must be base64"
			}
			*dst = blob
		}
	}
	return validateConfig(cfg)
}

func validateConfig(cfg *pluginConfig) string {
	switch {
	case cfg.AccessKey == "":
		return "access_key is required"
	case !accessKeyRe.MatchString(cfg.AccessKey):
		return "access_key must be 3 to 128 letters, digits or _+=,.@- (an access key ID like AKIAIOSFODNN7EXAMPLE)"
	case !slices.Contains(keyStores, cfg.KeyStore):
		return fmt.Sprintf("key_store must be one of %s", strings.Join(keyStores, ", "))
	case !regionRe.MatchString(cfg.Region):
		return fmt.Sprintf("region %q is not an AWS region name like eu-west-3", cfg.Region)
	case cfg.STSRegion != "" && !regionRe.MatchString(cfg.STSRegion):
		return fmt.Sprintf("sts_region %q is not an AWS region name", cfg.STSRegion)
	case cfg.MaxRetries < -1 || cfg.MaxRetries > 10:
		return "max_retries must be between -1 and 10"
	}
	for name, u := range map[string]string{"sts_endpoint": cfg.STSEndpoint, "iam_endpoint": cfg.IAMEndpoint, "transit_address": cfg.TransitAddress, "tink_vault_address": cfg.TinkVaultAddress} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return name + " must be an http or https URL"
		}
	}
	switch cfg.KeyStore {
	case storeTransit:
		if cfg.TransitAddress == "" {
			return "transit_address is required for the transit key store"
		}
		if cfg.TransitToken == "" {
			return "transit_token is required for the transit key store"
		}
		if cfg.TransitKeyVersion < 0 {
			return "transit_key_version must not be negative"
		}
		if cfg.TransitKeyName == "" {
			cfg.TransitKeyName = "aws-hmac-" + strings.ToLower(cfg.AccessKey)
		}
	case storePKCS11:
		if cfg.PKCS11Module == "" {
			return "pkcs11_module is required for the pkcs11 key store"
		}
		if cfg.PKCS11TokenLabel == "" && cfg.PKCS11TokenSerial == "" {
			return "pkcs11_token_label or pkcs11_token_serial is required for the pkcs11 key store"
		}
		if cfg.PKCS11PIN == "" {
			return "pkcs11_pin is required for the pkcs11 key store"
		}
		if !hexRe.MatchString(cfg.PKCS11KeyID) {
			return "pkcs11_key_id must be hex"
		}
		if cfg.PKCS11MaxSessions < 0 || cfg.PKCS11MaxSessions > 1024 {
			return "pkcs11_max_sessions must be between 0 and 1024"
		}
		if cfg.PKCS11KeyLabel == "" && cfg.PKCS11KeyID == "" {
			cfg.PKCS11KeyLabel = "aws-hmac-" + cfg.AccessKey
		}
	case storeTPM:
		if cfg.TPMDevice == "" {
			cfg.TPMDevice = "/dev/tpmrm0"
		}
		if !strings.HasPrefix(cfg.TPMDevice, "/dev/") && !strings.HasPrefix(cfg.TPMDevice, "tcp://") {
			return "tpm_device must be a device path such as /dev/tpmrm0 or tcp://HOST:PORT"
		}
		if h := cfg.TPMPersistentHandle; h != 0 && (h < 0x81000000 || h > 0x817FFFFF) {
			return "tpm_persistent_handle must be in the owner range 0x81000000-0x817FFFFF"
		}
		if h := cfg.TPMParentHandle; h != 0 && (h < 0x81000000 || h > 0x81FFFFFF) {
			return "tpm_parent_handle must be a persistent handle (0x81xxxxxx)"
		}
	case storeTink:
		if cfg.TinkKEKURI == "" {
			return "tink_kek_uri is required for the tink key store"
		}
		if strings.HasPrefix(cfg.TinkKEKURI, "hcvault://") && (cfg.TinkVaultAddress == "" || cfg.TinkVaultToken == "") {
			return "tink_vault_address and tink_vault_token are required for an hcvault:// KEK"
		}
	}
	return ""
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	existing, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	cfg := &pluginConfig{}
	if existing != nil {
		*cfg = *existing
	}
	if msg := applyConfigFields(cfg, d, existing == nil); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	secret := strings.TrimSpace(d.Get("secret_key").(string))
	if secret != "" && len(secret) != 40 && (len(secret) < 16 || len(secret) > 128) {
		return logical.ErrorResponse("secret_key does not look like an AWS secret access key"), nil
	}
	verify := !d.Get("skip_verification").(bool)

	if secret != "" && verify {
		// Prove the secret before it goes into the store, so a wrong one leaves nothing behind.
		if resp := b.verify(ctx, cfg, hmac.NewStaticKey(cfg.AccessKey, secret)); resp != nil {
			return resp, nil
		}
	}
	var key storeKey
	if secret != "" {
		key, err = importKey(ctx, cfg, secret)
		if err != nil {
			if strings.Contains(err.Error(), "already exists") || strings.Contains(err.Error(), "already taken") {
				return logical.ErrorResponse("secret_key: %s. Leave secret_key out to use the key already in the store.", err), nil
			}
			return nil, &keyStoreError{store: cfg.KeyStore, err: err}
		}
	} else {
		key, err = openKey(ctx, cfg)
		if err != nil {
			return logical.ErrorResponse("cannot open the key in the %s key store: %s", cfg.KeyStore, errors.Unwrap(err)), nil
		}
	}
	if verify {
		if resp := b.verify(ctx, cfg, key); resp != nil {
			_ = key.Close()
			return resp, nil
		}
	}
	if err := putConfig(ctx, req.Storage, cfg); err != nil {
		_ = key.Close()
		return nil, err
	}

	// Every cached key, client and derived key goes; the new key takes their place.
	signer := sigv4.NewSigner()
	client, err := newSTSClient(cfg, key, signer)
	b.lock.Lock()
	b.resetLocked()
	if err == nil {
		b.key, b.signer, b.sts = key, signer, client
	} else {
		_ = key.Close()
	}
	b.lock.Unlock()
	return nil, nil
}

// verify proves key with STS GetCallerIdentity; a refusal is the caller's to fix.
func (b *backend) verify(ctx context.Context, cfg *pluginConfig, key hmac.Key) *logical.Response {
	client, err := newSTSClient(cfg, nopCloser{key}, sigv4.NewSigner())
	if err != nil {
		return logical.ErrorResponse(err.Error())
	}
	if _, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return logical.ErrorResponse("the key failed STS GetCallerIdentity (set skip_verification to skip this check): %s", describeSTSError("GetCallerIdentity", err))
	}
	return nil
}

type nopCloser struct{ hmac.Key }

func (nopCloser) Close() error { return nil }

// describeSTSError gives AWS's code and message, or the key store's failure;
// never a secret.
func describeSTSError(op string, err error) string {
	var kse *keyStoreError
	if errors.As(err, &kse) {
		return kse.Error()
	}
	var stsErr *stscreds.Error
	if errors.As(stscreds.WrapError(op, err), &stsErr) && stsErr.Code != "" {
		return stsErr.Code + ": " + stsErr.Message
	}
	return err.Error()
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, nil
	}
	data := map[string]any{
		"access_key":   cfg.AccessKey,
		"key_store":    cfg.KeyStore,
		"region":       cfg.Region,
		"sts_endpoint": cfg.STSEndpoint,
		"sts_region":   cfg.STSRegion,
		"iam_endpoint": cfg.IAMEndpoint,
		"max_retries":  cfg.MaxRetries,
	}
	switch cfg.KeyStore {
	case storeTransit:
		data["transit_address"] = cfg.TransitAddress
		data["transit_mount"] = cfg.TransitMount
		data["transit_key_name"] = cfg.TransitKeyName
		data["transit_key_version"] = cfg.TransitKeyVersion
		data["transit_namespace"] = cfg.TransitNamespace
		data["transit_ca_cert"] = cfg.TransitCACert
	case storePKCS11:
		data["pkcs11_module"] = cfg.PKCS11Module
		data["pkcs11_token_label"] = cfg.PKCS11TokenLabel
		data["pkcs11_token_serial"] = cfg.PKCS11TokenSerial
		data["pkcs11_key_label"] = cfg.PKCS11KeyLabel
		data["pkcs11_key_id"] = cfg.PKCS11KeyID
		data["pkcs11_max_sessions"] = cfg.PKCS11MaxSessions
	case storeTPM:
		data["tpm_device"] = cfg.TPMDevice
		data["tpm_parent_handle"] = handleString(cfg.TPMParentHandle)
		data["tpm_persistent_handle"] = handleString(cfg.TPMPersistentHandle)
		data["tpm_public"] = base64.StdEncoding.EncodeToString(cfg.TPMPublic)
		data["tpm_private"] = base64.StdEncoding.EncodeToString(cfg.TPMPrivate)
		data["tpm_pcrs"] = cfg.TPMPCRs
	case storeTink:
		data["tink_kek_uri"] = cfg.TinkKEKURI
		data["tink_keyset"] = cfg.TinkKeyset
		data["tink_vault_address"] = cfg.TinkVaultAddress
	}
	return &logical.Response{Data: data}, nil
}

func handleString(h uint32) string {
	if h == 0 {
		return ""
	}
	return fmt.Sprintf("0x%08x", h)
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := req.Storage.Delete(ctx, configStoragePath); err != nil {
		return nil, err
	}
	b.reset()
	return nil, nil
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
GetCallerIdentity. PINs, tokens and passwords are write-only. Every write drops
the cached key, clients and derived signing keys.
`
