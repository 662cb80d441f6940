package tink

import (
	"bytes"
	"crypto/sha256"
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
