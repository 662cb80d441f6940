package pkcs11

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// Attestation is what the token says about the key: its protection
// attributes exactly as C_GetAttributeValue reports them, and the token's
// identity from C_GetTokenInfo. Nothing in it is signed by the token.
type Attestation struct {
	Token TokenInfo
	// The key's attributes by name (CKA_SENSITIVE, ...); an attribute the
	// token does not report for this object is absent.
	Attributes map[string]bool
	// Unreported names the attributes the token refused to report, with its
	// reason (the PKCS#11 return code).
	Unreported map[string]string
	KeyLabel   string
	KeyID      []byte
}

// TokenInfo is the token's identity as C_GetTokenInfo reports it.
type TokenInfo struct {
	Label, SerialNumber, ManufacturerID, Model string
	HardwareVersion, FirmwareVersion           string
}

// ProtectionAttributes are the attributes Attest reads, in the order it
// reports them.
var ProtectionAttributes = []struct {
	Name string
	Type uint
}{
	{"CKA_SENSITIVE", pkcs11.CKA_SENSITIVE},
	{"CKA_EXTRACTABLE", pkcs11.CKA_EXTRACTABLE},
	{"CKA_NEVER_EXTRACTABLE", pkcs11.CKA_NEVER_EXTRACTABLE},
	{"CKA_ALWAYS_SENSITIVE", pkcs11.CKA_ALWAYS_SENSITIVE},
	{"CKA_LOCAL", pkcs11.CKA_LOCAL},
}

// Attest asks the token for the key's protection attributes and its own
// identity, through the key's logged-in session. A token that went away is
// reconnected once, as HMAC does.
func (k *Key) Attest(ctx context.Context) (*Attestation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a, err := k.attest()
	if err == nil || err == errKeyClosed {
		return a, err
	}
	if rerr := k.reset(); rerr != nil {
		return nil, err
	}
	return k.attest()
}

func (k *Key) attest() (*Attestation, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, errKeyClosed
	}
	if !k.loggedIn {
		if err := k.connectLocked(); err != nil {
			return nil, err
		}
	}
	info, err := k.lib.ctx.GetTokenInfo(k.slot)
	if err != nil {
		return nil, k.storeError("read token info", err)
	}
	a := &Attestation{Token: tokenInfo(info), Attributes: map[string]bool{}, Unreported: map[string]string{},
		KeyLabel: k.cfg.KeyLabel, KeyID: append([]byte(nil), k.keyID...)}
	// One attribute per call: a token that does not know one answers the
	// whole call with an error, which would hide the others.
	for _, attr := range ProtectionAttributes {
		got, err := k.lib.ctx.GetAttributeValue(k.login, k.handle, []*pkcs11.Attribute{pkcs11.NewAttribute(attr.Type, nil)})
		switch {
		case isCode(err, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID) || isCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE):
			a.Unreported[attr.Name] = err.Error()
		case err != nil:
			return nil, k.storeError("read key attributes", err)
		case len(got) != 1 || len(got[0].Value) != 1:
			a.Unreported[attr.Name] = fmt.Sprintf("the token answered %d bytes, not one CK_BBOOL", valueLen(got))
		default:
			a.Attributes[attr.Name] = got[0].Value[0] != 0 // CK_BBOOL: CK_FALSE is 0
		}
	}
	return a, nil
}

func valueLen(attrs []*pkcs11.Attribute) int {
	if len(attrs) != 1 {
		return 0
	}
	return len(attrs[0].Value)
}

func tokenInfo(info pkcs11.TokenInfo) TokenInfo {
	return TokenInfo{
		Label:           strings.TrimSpace(info.Label),
		SerialNumber:    strings.TrimSpace(info.SerialNumber),
		ManufacturerID:  strings.TrimSpace(info.ManufacturerID),
		Model:           strings.TrimSpace(info.Model),
		HardwareVersion: fmt.Sprintf("%d.%d", info.HardwareVersion.Major, info.HardwareVersion.Minor),
		FirmwareVersion: fmt.Sprintf("%d.%d", info.FirmwareVersion.Major, info.FirmwareVersion.Minor),
	}
}

// Exposures names what the attributes say against the key staying in the
// token: not sensitive, or extractable (readable, or wrappable out of the
// token). An attribute the token did not report is named too: nothing
// shows it holds.
func (a *Attestation) Exposures() []string {
	var out []string
	if v, ok := a.Attributes["CKA_SENSITIVE"]; !ok || !v {
		out = append(out, "CKA_SENSITIVE is not true: the token may hand out the key's value")
	}
	if v, ok := a.Attributes["CKA_EXTRACTABLE"]; !ok || v {
		out = append(out, "CKA_EXTRACTABLE is not false: the key may be wrapped out of the token")
	}
	return out
}

// Report is the attestation as a verifier reads it.
func (a *Attestation) Report() map[string]any {
	return map[string]any{
		"token": map[string]any{
			"label": a.Token.Label, "serial_number": a.Token.SerialNumber, "manufacturer_id": a.Token.ManufacturerID,
			"model": a.Token.Model, "hardware_version": a.Token.HardwareVersion, "firmware_version": a.Token.FirmwareVersion,
		},
		"key_label":  a.KeyLabel,
		"key_id":     hex.EncodeToString(a.KeyID),
		"attributes": a.Attributes,
		"unreported": a.Unreported,
	}
}

// Statement says in plain words what the attributes mean, and what they
// cannot show.
func (a *Attestation) Statement() string {
	var s []string
	if e := a.Exposures(); len(e) > 0 {
		s = append(s, "The key CAN leave the token: "+strings.Join(e, "; ")+".")
	} else {
		s = append(s, "CKA_SENSITIVE is true and CKA_EXTRACTABLE false: the token will neither reveal the key's value nor wrap it out, and neither attribute can be changed back.")
	}
	origin := fmt.Sprintf("CKA_LOCAL=%s, CKA_ALWAYS_SENSITIVE=%s, CKA_NEVER_EXTRACTABLE=%s", a.value("CKA_LOCAL"), a.value("CKA_ALWAYS_SENSITIVE"), a.value("CKA_NEVER_EXTRACTABLE"))
	if a.Attributes["CKA_LOCAL"] && a.Attributes["CKA_ALWAYS_SENSITIVE"] && a.Attributes["CKA_NEVER_EXTRACTABLE"] {
		s = append(s, origin+": the token generated the key and it was never readable.")
	} else {
		s = append(s, origin+": as for any imported key, its value came from outside the token (the AWS secret existed before it was imported), so the token vouches that it will not give this copy out, not that no other copy exists.")
	}
	s = append(s, "These are the token's answers to C_GetAttributeValue as this plugin relays them, and the token's identity from C_GetTokenInfo; the token does not sign them, so a verifier relies on this Vault and plugin for them, and on the token enforcing its attributes.")
	return strings.Join(s, " ")
}

func (a *Attestation) value(name string) string {
	v, ok := a.Attributes[name]
	if !ok {
		return "unreported"
	}
	return fmt.Sprint(v)
}
