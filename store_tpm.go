package awshmac

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/framework"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
)

func init() {
	registerStore(&storeKind{
		name: "tpm",
		fields: map[string]*framework.FieldSchema{
			"tpm_device":            {Type: framework.TypeString, Description: "TPM to use: /dev/tpmrm0 (default) or tcp://HOST:PORT for swtpm."},
			"tpm_parent_handle":     {Type: framework.TypeString, Description: "Persistent parent handle in hex (e.g. 0x81000001); default: the standard ECC storage root key."},
			"tpm_persistent_handle": {Type: framework.TypeString, Description: "Keep the key at this persistent handle (hex) instead of as blobs in Vault storage."},
			"tpm_public":            {Type: framework.TypeString, Description: "Public blob of an existing key, base64 (as returned on read)."},
			"tpm_private":           {Type: framework.TypeString, Description: "Private blob of an existing key, base64; wrapped by the TPM and useless elsewhere."},
			"tpm_pcrs":              {Type: framework.TypeCommaIntSlice, Description: "SHA-256 PCRs to seal the key to on import (e.g. 7): it then works only while they hold their current values."},
			"tpm_password":          {Type: framework.TypeString, Description: "Authorisation value of the key. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
			"tpm_mode":              {Type: framework.TypeString, Description: "create (default): the key is created in this node's TPM; duplicate: it is wrapped to each enrolled node's TPM (tpm_targets) and each node imports its own copy.", AllowedValues: []any{tpmModeCreate, tpmModeDuplicate}},
			"tpm_targets":           {Type: framework.TypeString, Description: "tpm_mode=duplicate: JSON array of the nodes' enrolments (aws-hmac tpm enroll); each must chain to the registration's EK CA, or, without an EK certificate, have its parent_name listed in the registration's AWS_HMAC_TPM_ALLOW_SRK. A target's pcrs (0-23, each once) are not covered by its certificate."},
			"tpm_blobs":             {Type: framework.TypeString, Description: "tpm_mode=duplicate: JSON array of the key wrapped to each target (aws-hmac tpm wrap); not secret. Leave out when secret_key is given: the plugin wraps it."},
		},
		writeOnly: []string{"tpm_password"},
		newParams: func() storeParams { return new(tpmParams) },
	})
}

// tpmParams locates a TPM and a keyed-hash object in it: blobs wrapped by
// the parent, or a persistent handle.
type tpmParams struct {
	Device           string       `json:"tpm_device,omitempty"`
	ParentHandle     uint32       `json:"tpm_parent_handle,omitempty"`
	PersistentHandle uint32       `json:"tpm_persistent_handle,omitempty"`
	Public           []byte       `json:"tpm_public,omitempty"`
	Private          []byte       `json:"tpm_private,omitempty"`
	ParentName       []byte       `json:"tpm_parent_name,omitempty"`
	PCRs             []uint       `json:"tpm_pcrs,omitempty"`
	Password         string       `json:"tpm_password,omitempty"` // write-only
	Mode             string       `json:"tpm_mode,omitempty"`
	Targets          []tpm.Target `json:"tpm_targets,omitempty"`
	Blobs            []tpm.Blob   `json:"tpm_blobs,omitempty"`
	// env is the registration the config was last validated against:
	// this node's TPM in duplicate mode (AWS_HMAC_TPM_DEVICE) comes from
	// it, and the targets are checked against it again before a secret
	// is wrapped. Never stored.
	env *operatorEnv
}

func (p *tpmParams) parse(d *framework.FieldData) error {
	parseStrings(d, map[string]*string{"tpm_device": &p.Device, "tpm_password": &p.Password, "tpm_mode": &p.Mode})
	if err := p.parseDuplicate(d); err != nil {
		return err
	}
	for name, dst := range map[string]*uint32{"tpm_parent_handle": &p.ParentHandle, "tpm_persistent_handle": &p.PersistentHandle} {
		if v, ok := d.GetOk(name); ok {
			h, err := parseHandle(v.(string))
			if err != nil {
				return badInput("%s must be a hex TPM handle such as 0x81000001", name)
			}
			*dst = h
		}
	}
	for name, dst := range map[string]*[]byte{"tpm_public": &p.Public, "tpm_private": &p.Private} {
		if v, ok := d.GetOk(name); ok {
			blob, err := base64.StdEncoding.DecodeString(v.(string))
			if err != nil {
				return badInput("%s must be base64", name)
			}
			*dst = blob
		}
	}
	if v, ok := d.GetOk("tpm_pcrs"); ok {
		return p.parsePCRs(v.([]int))
	}
	return nil
}

func (p *tpmParams) parseDuplicate(d *framework.FieldData) error {
	v, newTargets := d.GetOk("tpm_targets")
	if newTargets {
		p.Targets = nil
		if err := parseJSONList("tpm_targets", v.(string), &p.Targets); err != nil {
			return err
		}
	}
	if v, ok := d.GetOk("tpm_blobs"); ok {
		p.Blobs = nil
		return parseJSONList("tpm_blobs", v.(string), &p.Blobs)
	}
	if newTargets { // a node removed from the targets loses its stored blob
		p.Blobs = slices.DeleteFunc(p.Blobs, func(b tpm.Blob) bool { return !p.hasTarget(b.Parent, b.ParentName) })
	}
	return nil
}

func parseHandle(s string) (uint32, error) {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 16, 32)
	return uint32(n), err
}

func (p *tpmParams) parsePCRs(pcrs []int) error {
	if len(pcrs) > 24 {
		return badInput("tpm_pcrs: at most 24 PCRs")
	}
	p.PCRs = nil
	for _, pcr := range pcrs {
		if pcr < 0 || pcr > 23 {
			return badInput("tpm_pcrs must be PCR numbers from 0 to 23")
		}
		p.PCRs = append(p.PCRs, uint(pcr))
	}
	if err := tpm.CheckPCRs(p.PCRs); err != nil {
		return badInput("tpm_pcrs: %v", err)
	}
	return nil
}

func (p *tpmParams) applyDefaults(string) {
	if p.Device == "" {
		p.Device = "/dev/tpmrm0"
	}
	if p.Mode == "" {
		p.Mode = tpmModeCreate
	}
}

// validate also notes this node's TPM (AWS_HMAC_TPM_DEVICE) for duplicate
// mode: every use of a stored config is validated first.
func (p *tpmParams) validate(env *operatorEnv) error {
	nodeDeviceMu.Lock()
	p.env = env
	nodeDeviceMu.Unlock()
	switch h := p.PersistentHandle; {
	case !env.allowsTPM(p.device()):
		return badInput("tpm_device (or this node's %s) must be /dev/tpmN, /dev/tpmrmN, or a tcp://HOST:PORT the plugin's registration allows (%s)", envTPMDevice, envTPMAddresses)
	case h != 0 && (h < 0x81000000 || h > 0x817FFFFF):
		return badInput("tpm_persistent_handle must be in the owner range 0x81000000-0x817FFFFF")
	case p.ParentHandle != 0 && (p.ParentHandle < 0x81000000 || p.ParentHandle > 0x81FFFFFF):
		return badInput("tpm_parent_handle must be a persistent handle (0x81xxxxxx)")
	case p.Mode == tpmModeDuplicate:
		return p.validateDuplicate(env)
	case p.Mode != tpmModeCreate && p.Mode != "":
		return badInput("tpm_mode must be %s or %s", tpmModeCreate, tpmModeDuplicate)
	case len(p.Targets) > 0 || len(p.Blobs) > 0:
		return badInput("tpm_targets and tpm_blobs need tpm_mode=duplicate")
	}
	return nil
}

func (p *tpmParams) endpoints() map[string]string { return nil }

func (p *tpmParams) insecureUses() []string { return nil }

func (p *tpmParams) data() map[string]any {
	return map[string]any{
		"tpm_device":            p.Device,
		"tpm_parent_handle":     handleString(p.ParentHandle),
		"tpm_persistent_handle": handleString(p.PersistentHandle),
		"tpm_public":            base64.StdEncoding.EncodeToString(p.Public),
		"tpm_private":           base64.StdEncoding.EncodeToString(p.Private),
		"tpm_pcrs":              p.PCRs,
		"tpm_mode":              p.Mode,
		"tpm_targets":           jsonString(p.Targets),
		"tpm_blobs":             jsonString(p.Blobs),
	}
}

func handleString(h uint32) string {
	if h == 0 {
		return ""
	}
	return fmt.Sprintf("0x%08x", h)
}

// nodeDeviceMu guards env: a cached config is validated and used by
// concurrent requests.
var nodeDeviceMu sync.Mutex

// device is the TPM this node uses.
func (p *tpmParams) device() string {
	nodeDeviceMu.Lock()
	defer nodeDeviceMu.Unlock()
	if p.Mode == tpmModeDuplicate && p.env != nil && p.env.tpmDevice != "" {
		return p.env.tpmDevice
	}
	return p.Device
}

func (p *tpmParams) config() tpm.Config {
	return tpm.Config{
		Device: p.device(), Parent: p.ParentHandle, Password: p.Password, PersistentHandle: p.PersistentHandle,
		Public: p.Public, Private: p.Private, ParentName: p.ParentName, PCRs: p.PCRs,
		Blobs: p.Blobs,
	}
}

func (p *tpmParams) open(ctx context.Context, accessKey string) (storeKey, error) {
	if p.Mode == tpmModeDuplicate && len(p.Blobs) == 0 {
		return nil, errors.New("tpm_blobs: no blobs; give them, or give secret_key to have them wrapped to tpm_targets")
	}
	return tpm.Open(ctx, p.config(), accessKey)
}

func (p *tpmParams) importSecret(ctx context.Context, accessKey, secret string) (storeKey, error) {
	if p.Mode == tpmModeDuplicate {
		return p.wrapToTargets(ctx, accessKey, secret)
	}
	k, err := tpm.Import(ctx, p.config(), accessKey, secret)
	if err != nil {
		return nil, err
	}
	ref := k.Reference()
	p.Public, p.Private, p.ParentName = ref.Public, ref.Private, ref.ParentName
	return k, nil
}

func (p *tpmParams) vaultTokens() []vaultToken { return nil }

func (p *tpmParams) forRotation(string) (storeParams, error) {
	if p.PersistentHandle != 0 {
		return nil, badInput("tpm_persistent_handle: rotation creates a new key as blobs; configure the key without a persistent handle to rotate it")
	}
	nodeDeviceMu.Lock()
	n := *p
	nodeDeviceMu.Unlock()
	n.Public, n.Private, n.ParentName, n.Blobs = nil, nil, nil, nil
	return &n, nil
}

// destroy has nothing to do: the blobs are wrapped by the TPM's parent
// key and dropped with the old config; the TPM keeps no state for them.
func (p *tpmParams) destroy(context.Context, string) error { return nil }

func (p *tpmParams) bindings() map[string][]string {
	return map[string][]string{"tpm_password": {"tpm_device", "tpm_parent_handle", "tpm_persistent_handle", "tpm_public", "tpm_private", "tpm_mode", "tpm_targets", "tpm_blobs"}}
}

// attest has the TPM certify the key over the nonce (or, for the periodic
// check, decodes its public area); see attestation.go.
func (p *tpmParams) attest(ctx context.Context, key storeKey, r attestRequest) (*keyAttestation, error) {
	k, ok := key.(*tpm.Key)
	if !ok {
		return nil, errNoOpenKey
	}
	if r.check {
		exposures, err := k.Exposures(ctx)
		return &keyAttestation{exposures: exposures}, err
	}
	var act *tpm.Activation
	if a := r.activate; a != nil {
		act = &tpm.Activation{EK: a.ek, IDObject: a.idObject, EncSecret: a.encSeed}
	}
	ans, err := k.Attest(ctx, r.nonce, act)
	if errors.Is(err, tpm.ErrCredentialRefused) {
		return nil, badInput("credential_blob: %v", err)
	}
	if err != nil {
		return nil, err
	}
	return &keyAttestation{statement: ans.Statement, evidence: ans.Report, exposures: ans.Exposures, activated: act != nil}, nil
}
