package transit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"
)

// Properties is what transit says of the key: its type, whether it may
// leave (exportable, allow_plaintext_backup) and its versions. Readable is
// false when the token may not read <mount>/keys/<name>, or transit has no
// such key; Reason then says which.
type Properties struct {
	Readable bool
	Reason   string

	Type                 string
	Exportable           bool
	AllowPlaintextBackup bool
	DeletionAllowed      bool
	ImportedKey          bool
	LatestVersion        int
	MinDecryptionVersion int
	MinEncryptionVersion int
	MinAvailableVersion  int
	KeySize              int // bytes of key material: 44 for "AWS4" and a 40-character secret
	// AutoRotatePeriod, when not zero, has transit replace the key with
	// random material it generates: no longer the AWS secret.
	AutoRotatePeriod time.Duration
}

// ReadProperties reads <mount>/keys/<name> with cfg's token. A token without
// read there, or a missing key, is an answer (Readable false); only transit
// failing to answer is an error.
func ReadProperties(ctx context.Context, cfg Config) (*Properties, error) {
	if cfg.Name == "" {
		return nil, errors.New("transit: no key name")
	}
	client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	path := cfg.mount() + "/keys/" + cfg.Name
	s, err := client.Logical().ReadWithContext(ctx, path)
	var re *api.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return &Properties{Reason: "the plugin's transit token may not read " + path}, nil
	case err != nil:
		return nil, fmt.Errorf("transit: read %s at %s: %w", path, client.Address(), err)
	case s == nil || s.Data == nil:
		return &Properties{Reason: "transit has no key " + path}, nil
	}
	return propertiesOf(s.Data)
}

func propertiesOf(d map[string]any) (*Properties, error) {
	p := &Properties{Readable: true}
	p.Type, _ = d["type"].(string)
	p.Exportable, _ = d["exportable"].(bool)
	p.AllowPlaintextBackup, _ = d["allow_plaintext_backup"].(bool)
	p.DeletionAllowed, _ = d["deletion_allowed"].(bool)
	p.ImportedKey, _ = d["imported_key"].(bool)
	for name, dst := range map[string]*int{
		"latest_version": &p.LatestVersion, "min_decryption_version": &p.MinDecryptionVersion,
		"min_encryption_version": &p.MinEncryptionVersion, "min_available_version": &p.MinAvailableVersion,
		"key_size": &p.KeySize,
	} {
		if v, ok := d[name]; ok {
			n, err := intValue(v)
			if err != nil {
				return nil, fmt.Errorf("transit: %s: %w", name, err)
			}
			*dst = n
		}
	}
	if n, err := intValue(d["auto_rotate_period"]); err == nil {
		p.AutoRotatePeriod = time.Duration(n) * time.Second
	}
	return p, nil
}

// Exposures names what lets the key leave transit, or makes it not the
// AWS secret; none when the key could not be read.
func (p *Properties) Exposures() []string {
	if !p.Readable {
		return nil
	}
	var out []string
	if p.Exportable {
		out = append(out, "exportable is true: transit/export hands out the key")
	}
	if p.AllowPlaintextBackup {
		out = append(out, "allow_plaintext_backup is true: transit/backup hands out the key")
	}
	if p.Type != "hmac" {
		out = append(out, "type is "+strconv.Quote(p.Type)+", not hmac")
	}
	return out
}
