package tink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go/v2/keyset"
)

// Description is what the stored keyset shows without the KEK: the
// keyset's public info (Tink keeps it in clear beside the ciphertext) and a
// digest of the whole stored keyset. It proves nothing about where K is
// used: a Tink keyset is decrypted into the memory of the process that
// computes with it.
type Description struct {
	KEKScheme    string // hcvault, aws-kms, gcp-kms or insecure-local-kek
	PrimaryKeyID uint32
	Keys         []KeyInfo
	SHA256       []byte // of the stored (encrypted) keyset
}

// KeyInfo is one key of the keyset, as its public info names it.
type KeyInfo struct {
	ID           uint32
	TypeURL      string
	Status       string
	OutputPrefix string
}

// Describe reads the public info of an encrypted keyset in Tink's JSON
// format; it needs no KEK and decrypts nothing.
func Describe(kekURI string, encrypted []byte) (*Description, error) {
	enc, err := keyset.NewJSONReader(bytes.NewReader(encrypted)).ReadEncrypted()
	if err != nil {
		return nil, fmt.Errorf("tink: keyset: %w", err)
	}
	scheme, _, _ := strings.Cut(kekURI, "://")
	sum := sha256.Sum256(encrypted)
	d := &Description{KEKScheme: scheme, SHA256: sum[:]}
	if info := enc.GetKeysetInfo(); info != nil {
		d.PrimaryKeyID = info.GetPrimaryKeyId()
		for _, k := range info.GetKeyInfo() {
			d.Keys = append(d.Keys, KeyInfo{ID: k.GetKeyId(), TypeURL: k.GetTypeUrl(),
				Status: k.GetStatus().String(), OutputPrefix: k.GetOutputPrefixType().String()})
		}
	}
	return d, nil
}

// Report is the description as a verifier reads it.
func (d *Description) Report() map[string]any {
	keys := make([]map[string]any, len(d.Keys))
	for i, k := range d.Keys {
		keys[i] = map[string]any{"key_id": k.ID, "type_url": k.TypeURL, "status": k.Status, "output_prefix": k.OutputPrefix}
	}
	return map[string]any{"kek_scheme": d.KEKScheme, "primary_key_id": d.PrimaryKeyID, "keys": keys,
		"keyset_sha256": hex.EncodeToString(d.SHA256), "decrypted_in_plugin_memory": true}
}

// Statement says what a Tink keyset can and cannot claim.
func (d *Description) Statement() string {
	s := "No key store keeps this key in: the keyset is decrypted into the plugin's memory to compute HMACs, so K is in clear in the plugin process while the key is in use. " +
		"The KEK (" + d.KEKScheme + ") only wraps the keyset at rest, in Vault storage (tink_keyset, returned by a config read): whoever can decrypt with the KEK and read tink_keyset can recover K. " +
		"No claim is made that the key cannot leave."
	if d.KEKScheme+"://" == LocalKEKScheme {
		s += " The KEK itself is a cleartext file (development only): whoever reads it and tink_keyset recovers K."
	}
	return s
}
