package awshmac

import (
	"context"
	"encoding/hex"
	"regexp"

	"github.com/hashicorp/vault/sdk/framework"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
)

func init() {
	registerStore(&storeKind{
		name: "pkcs11",
		fields: map[string]*framework.FieldSchema{
			"pkcs11_module":       {Type: framework.TypeString, Description: "Path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so."},
			"pkcs11_token_label":  {Type: framework.TypeString, Description: "Label of the token holding the key."},
			"pkcs11_token_serial": {Type: framework.TypeString, Description: "Serial number of the token, to tell tokens with the same label apart."},
			"pkcs11_key_label":    {Type: framework.TypeString, Description: "CKA_LABEL of the key. Default aws-hmac-<access_key>."},
			"pkcs11_key_id":       {Type: framework.TypeString, Description: "CKA_ID of the key, in hex. Set on import."},
			"pkcs11_max_sessions": {Type: framework.TypeInt, Description: "Most sessions opened for signing. Default 8."},
			"pkcs11_pin":          {Type: framework.TypeString, Description: "User PIN of the token. Write-only.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		},
		writeOnly: []string{"pkcs11_pin"},
		newParams: func() storeParams { return new(pkcs11Params) },
	})
}

var hexRe = regexp.MustCompile(`^([0-9a-fA-F]{2})*$`)

// pkcs11Params locates a token and a key on it.
type pkcs11Params struct {
	Module      string `json:"pkcs11_module,omitempty"`
	TokenLabel  string `json:"pkcs11_token_label,omitempty"`
	TokenSerial string `json:"pkcs11_token_serial,omitempty"`
	KeyLabel    string `json:"pkcs11_key_label,omitempty"`
	KeyID       string `json:"pkcs11_key_id,omitempty"` // hex
	MaxSessions int    `json:"pkcs11_max_sessions,omitempty"`
	PIN         string `json:"pkcs11_pin,omitempty"` // write-only
	// pinGiven: this write gave pkcs11_pin, which the token checks before
	// the key is opened or imported (checkGivenPIN). Never stored, so
	// engines built later from the stored config do not check it again.
	pinGiven bool
}

func (p *pkcs11Params) parse(d *framework.FieldData) error {
	parseStrings(d, map[string]*string{
		"pkcs11_module": &p.Module, "pkcs11_token_label": &p.TokenLabel, "pkcs11_token_serial": &p.TokenSerial,
		"pkcs11_key_label": &p.KeyLabel, "pkcs11_key_id": &p.KeyID, "pkcs11_pin": &p.PIN,
	})
	if v, ok := d.GetOk("pkcs11_max_sessions"); ok {
		p.MaxSessions = v.(int)
	}
	_, p.pinGiven = d.GetOk("pkcs11_pin")
	return nil
}

func (p *pkcs11Params) applyDefaults(accessKey string) {
	if p.KeyLabel == "" && p.KeyID == "" {
		p.KeyLabel = "aws-hmac-" + accessKey
	}
}

func (p *pkcs11Params) validate(env *operatorEnv) error {
	switch {
	case p.Module == "":
		return badInput("pkcs11_module is required for the pkcs11 key store")
	case p.TokenLabel == "" && p.TokenSerial == "":
		return badInput("pkcs11_token_label or pkcs11_token_serial is required for the pkcs11 key store")
	case p.PIN == "":
		return badInput("pkcs11_pin is required for the pkcs11 key store")
	case !hexRe.MatchString(p.KeyID):
		return badInput("pkcs11_key_id must be hex")
	case p.MaxSessions < 0 || p.MaxSessions > 1024:
		return badInput("pkcs11_max_sessions must be between 0 and 1024")
	case !env.allowsModule(p.Module):
		// Checked before anything loads it: dlopen runs the library's code.
		return badInput("pkcs11_module is not one of the libraries the plugin's registration allows (%s); %s", envPKCS11Modules, registrationHint(envPKCS11Modules, "/usr/lib/softhsm/libsofthsm2.so"))
	}
	return nil
}

func (p *pkcs11Params) endpoints() map[string]string { return nil }

func (p *pkcs11Params) insecureUses() []string { return nil }

func (p *pkcs11Params) data() map[string]any {
	return map[string]any{
		"pkcs11_module":       p.Module,
		"pkcs11_token_label":  p.TokenLabel,
		"pkcs11_token_serial": p.TokenSerial,
		"pkcs11_key_label":    p.KeyLabel,
		"pkcs11_key_id":       p.KeyID,
		"pkcs11_max_sessions": p.MaxSessions,
	}
}

func (p *pkcs11Params) config() pkcs11.Config {
	id, _ := hex.DecodeString(p.KeyID) // validate checked it
	return pkcs11.Config{
		Module: p.Module, TokenLabel: p.TokenLabel, TokenSerial: p.TokenSerial, PIN: p.PIN,
		KeyLabel: p.KeyLabel, KeyID: id, MaxSessions: p.MaxSessions,
	}
}

func (p *pkcs11Params) open(ctx context.Context, accessKey string) (storeKey, error) {
	if err := p.checkGivenPIN(ctx); err != nil {
		return nil, err
	}
	return pkcs11.Open(ctx, p.config(), accessKey)
}

// checkGivenPIN has the token check a PIN this write gave, in a process
// that has never logged in (pkcs11.CheckPIN): while this one is logged in
// to the token, a login here would accept any PIN, and a caller who does
// not know it could point the plugin at another key the PIN protects. Every
// PIN given is checked, an unchanged one too: the stored one may have been
// taken while the token was logged in, so it proves nothing. Done once,
// before the config holding it is published.
func (p *pkcs11Params) checkGivenPIN(ctx context.Context) error {
	if !p.pinGiven {
		return nil
	}
	// Throttled per module (store_pkcs11_pincheck.go): each check costs a
	// login attempt on the token. A refusal names pkcs11_pin.
	if err := pkcs11PINChecks.check(ctx, p.config()); err != nil {
		return err
	}
	p.pinGiven = false
	return nil
}

func (p *pkcs11Params) importSecret(ctx context.Context, accessKey, secret string) (storeKey, error) {
	if err := p.checkGivenPIN(ctx); err != nil {
		return nil, err
	}
	k, err := pkcs11.Import(ctx, p.config(), accessKey, secret)
	if err != nil {
		return nil, err
	}
	p.KeyID = hex.EncodeToString(k.Reference().KeyID)
	return k, nil
}

func (p *pkcs11Params) vaultTokens() []vaultToken { return nil }

func (p *pkcs11Params) forRotation(newAccessKey string) (storeParams, error) {
	n := *p
	n.KeyLabel, n.KeyID = "aws-hmac-"+newAccessKey, ""
	return &n, nil
}

func (p *pkcs11Params) destroy(ctx context.Context, accessKey string) error {
	k, err := pkcs11.Open(ctx, p.config(), accessKey)
	if err != nil {
		return err
	}
	return k.Destroy()
}

func (p *pkcs11Params) bindings() map[string][]string {
	return map[string][]string{"pkcs11_pin": {"pkcs11_module", "pkcs11_token_label", "pkcs11_token_serial", "pkcs11_key_label", "pkcs11_key_id"}}
}

// attest reports the key's attributes as the token does; see attestation.go.
func (p *pkcs11Params) attest(ctx context.Context, key storeKey, _ attestRequest) (*keyAttestation, error) {
	k, ok := key.(*pkcs11.Key)
	if !ok {
		return nil, errNoOpenKey
	}
	a, err := k.Attest(ctx)
	if err != nil {
		return nil, err
	}
	return &keyAttestation{statement: a.Statement(), evidence: a.Report(), exposures: a.Exposures()}, nil
}
