package transit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// Report is the properties as a verifier reads them.
func (p *Properties) Report() map[string]any {
	if !p.Readable {
		return map[string]any{"readable": false, "reason": p.Reason}
	}
	return map[string]any{
		"readable": true, "type": p.Type, "exportable": p.Exportable, "allow_plaintext_backup": p.AllowPlaintextBackup,
		"deletion_allowed": p.DeletionAllowed, "imported_key": p.ImportedKey, "key_size": p.KeySize,
		"latest_version": p.LatestVersion, "min_decryption_version": p.MinDecryptionVersion,
		"min_encryption_version": p.MinEncryptionVersion, "min_available_version": p.MinAvailableVersion,
		"auto_rotate_period": int64(p.AutoRotatePeriod / time.Second),
	}
}

// Statement says in plain words what the properties mean, and what they
// cannot show.
func (p *Properties) Statement(mount, name string) string {
	key := mount + "/keys/" + name
	if !p.Readable {
		return p.Reason + ": nothing can be said of whether the key is exportable or backed up in plaintext. Give the plugin's transit token read on " + key + "."
	}
	var s []string
	if e := p.Exposures(); len(e) > 0 {
		s = append(s, "The key CAN leave transit: "+strings.Join(e, "; ")+". Transit never unsets these flags: rotate the access key away (config/rotate-root).")
	} else {
		s = append(s, "Transit reports "+key+" as type hmac, exportable false and allow_plaintext_backup false: transit will neither export it nor back it up in plaintext.")
	}
	if p.ImportedKey {
		s = append(s, "It was imported (imported_key): its value came from outside (the AWS secret existed before it was imported), so transit vouches that it will not give this copy out, not that no other copy exists.")
	}
	if p.AutoRotatePeriod != 0 {
		s = append(s, "auto_rotate_period is set: transit will replace the key with material of its own, which is not the AWS secret.")
	}
	s = append(s, "These flags hold only until someone allowed to update "+key+"/config sets them (the plugin checks them again every attestation_check_period); they are transit's answer to the plugin's own token, relayed by the plugin and not signed.")
	return strings.Join(s, " ")
}
