package awshmac

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// endorsementKeys are the EK templates a credential can be made against.
var endorsementKeys = []string{"ecc-nist-p256", "rsa-2048"}

func pathConfigAttestation(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config/attestation",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "attestation",
		},
		Fields: map[string]*framework.FieldSchema{
			"nonce":             {Type: framework.TypeString, Description: "A fresh value of yours, 8 to 64 bytes, in hex (when it is only hex digits) or base64: the TPM certifies the key over it. Other stores sign nothing and ignore it."},
			"credential_blob":   {Type: framework.TypeString, Description: "tpm only: the credential blob (TPM2B_ID_OBJECT contents, base64) TPM2_MakeCredential made for ak_name with an endorsement key; the answer's evidence then carries activated_credential."},
			"credential_secret": {Type: framework.TypeString, Description: "tpm only: the encrypted seed (TPM2B_ENCRYPTED_SECRET contents, base64) that came with credential_blob."},
			"endorsement_key":   {Type: framework.TypeString, Default: endorsementKeys[0], AllowedValues: anySlice(endorsementKeys), Description: "tpm only: the endorsement key the credential was made with: " + strings.Join(endorsementKeys, " or ") + "."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathAttestationRead,
				Summary:  "Evidence, from the key store, that the key cannot leave it, and what that evidence means.",
				Responses: map[int][]framework.Response{http.StatusOK: {{
					Description: "OK",
					Fields: map[string]*framework.FieldSchema{
						"key_store":  {Type: framework.TypeString, Description: "The key store attested."},
						"access_key": {Type: framework.TypeString, Description: "The access key whose secret the store holds."},
						"statement":  {Type: framework.TypeString, Description: "What the evidence shows, and what it cannot show, in plain words."},
						"evidence":   {Type: framework.TypeMap, Description: "The store's evidence, for a verifier to check."},
						"exposures":  {Type: framework.TypeStringSlice, Description: "What lets the key leave its store now; empty when nothing does."},
						"last_check": {Type: framework.TypeMap, Description: "The periodic check's last result."},
					},
				}}},
			},
		},
		HelpSynopsis:    pathConfigAttestationHelpSyn,
		HelpDescription: pathConfigAttestationHelpDesc,
	}
}

func (b *backend) pathAttestationRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := parseAttestRequest(d)
	if err != nil {
		return b.respond(nil, err)
	}
	att, cfg, err := b.attestKey(ctx, req.Storage, r)
	if err != nil {
		return b.respond(nil, err)
	}
	if r.activate != nil && !att.activated {
		return b.respond(nil, badInput("credential_blob: the %s key store has no attestation key to activate a credential for", cfg.KeyStore))
	}
	exposures := att.exposures
	if exposures == nil {
		exposures = []string{}
	}
	resp := &logical.Response{Data: map[string]any{
		"key_store": cfg.KeyStore, "access_key": cfg.AccessKey, "statement": att.statement,
		"evidence": att.evidence, "exposures": exposures, "last_check": b.lastCheck(ctx, req.Storage, cfg),
	}}
	if len(att.exposures) > 0 {
		resp.AddWarning("the key can leave its store: " + strings.Join(att.exposures, "; "))
	}
	return b.respond(resp, nil)
}

func parseAttestRequest(d *framework.FieldData) (attestRequest, error) {
	nonce, err := parseNonce(d)
	if err != nil {
		return attestRequest{}, err
	}
	if ek := d.Get("endorsement_key").(string); !slices.Contains(endorsementKeys, ek) {
		return attestRequest{}, badInput("endorsement_key must be %s", strings.Join(endorsementKeys, " or "))
	}
	act, err := parseActivation(d)
	return attestRequest{nonce: nonce, activate: act}, err
}

// lastCheck is the periodic check's last result for the configured key.
func (b *backend) lastCheck(ctx context.Context, s logical.Storage, cfg *pluginConfig) map[string]any {
	out := map[string]any{"period": int64(cfg.attestationCheckPeriod().Seconds()), "rotate_on_exposure": cfg.RotateOnExposure, "checked_at": ""}
	st, err := b.attestationStatus(ctx, s)
	if err != nil || !st.about(cfg) {
		return out
	}
	out["checked_at"], out["exposures"], out["problem"] = formatTime(st.CheckedAt), st.Exposures, st.Problem
	return out
}

const pathConfigAttestationHelpSyn = `Evidence that the key cannot leave its key store.`

const pathConfigAttestationHelpDesc = `
Reading config/attestation asks the key store about the configured key and
answers its evidence, a statement of what that evidence shows and what it
cannot, and the exposures (properties that let the key leave) found now.

pkcs11: CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE,
CKA_ALWAYS_SENSITIVE and CKA_LOCAL exactly as the token reports them, and the
token's label, serial, manufacturer and model. An imported key reports the
last three false. The token signs none of it.

tpm: the key's public area and Name, its attributes decoded, and a
TPM2_Certify of its Name over your nonce by an attestation key (AK): an ECC
P-256 restricted signing key the TPM derives in its endorsement hierarchy
from a fixed template (ak_command gives the tpm2-tools command that derives
the same key), with the endorsement keys' public areas and their
certificates when the TPM holds them. A verifier checks it all offline, but
must tie ak_name to the TPM once: on the host with ak_command, or with
credential_blob and credential_secret (TPM2_MakeCredential for ak_name with
a certified EK), which the TPM releases only beside that EK.

transit: type, exportable, allow_plaintext_backup, versions, read with the
plugin's own transit token; a token without read on <mount>/keys/<name> is
named in the answer.

tink: the keyset's public info; the keyset is decrypted in the plugin's
memory, and no claim is made that the key cannot leave.

The active node checks the same properties every attestation_check_period
(default 10m; 0 turns it off): a regression is logged and shown as a warning
on config reads, and with rotate_on_exposure=true the root key is rotated
away at once.
`
