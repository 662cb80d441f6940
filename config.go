package awshmac

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	configStoragePath = "config"
	defaultRegion     = "us-east-1"
	defaultSTSTimeout = 10 * time.Second
	maxSTSTimeout     = 5 * time.Minute
)

var (
	accessKeyRe = regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{3,128}$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
)

// pluginConfig is what config stores: the common fields and the chosen key
// store's, flat in one JSON object. It holds the key store's reference and
// the credentials to reach the store — never the AWS secret, K or anything
// derived from them.
type pluginConfig struct {
	commonConfig
	store storeParams
}

// commonConfig is every field that is not a key store's.
type commonConfig struct {
	AccessKey   string        `json:"access_key"`
	KeyStore    string        `json:"key_store"`
	Region      string        `json:"region"`
	STSEndpoint string        `json:"sts_endpoint,omitempty"`
	STSRegion   string        `json:"sts_region,omitempty"`
	IAMEndpoint string        `json:"iam_endpoint,omitempty"`
	MaxRetries  int           `json:"max_retries"`
	STSTimeout  time.Duration `json:"sts_timeout,omitempty"`

	// Rotation of the root key inside the store.
	RotationPeriod        time.Duration `json:"rotation_period,omitempty"`
	DisableAutoRotation   bool          `json:"disable_automated_rotation,omitempty"`
	RotationVerifyTimeout time.Duration `json:"rotation_verify_timeout,omitempty"`
	OldStoreObject        string        `json:"old_store_object,omitempty"`
	OldKeyGrace           time.Duration `json:"old_key_grace,omitempty"`
	LastRotated           time.Time     `json:"last_rotated,omitempty"`
	AccessKeyCreated      time.Time     `json:"access_key_created,omitempty"` // from IAM, when the plugin made the key
	RotationBase          time.Time     `json:"rotation_base,omitempty"`      // when the schedule started

	// Attestation: the active node's periodic check of the key's protection.
	AttestationCheckPeriod *time.Duration `json:"attestation_check_period,omitempty"` // nil: the default; 0: off
	RotateOnExposure       bool           `json:"rotate_on_exposure,omitempty"`
}

func commonFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"access_key":   {Type: framework.TypeString, Description: "AWS access key ID of the key held in the key store. Required."},
		"key_store":    {Type: framework.TypeString, Default: "transit", AllowedValues: anySlice(storeNames()), Description: "Where the secret lives: " + strings.Join(storeNames(), ", ") + "."},
		"region":       {Type: framework.TypeString, Default: defaultRegion, Description: "Default AWS region for signing and STS."},
		"sts_endpoint": {Type: framework.TypeString, Description: "STS endpoint URL; default: the regional endpoint of sts_region."},
		"sts_region":   {Type: framework.TypeString, Description: "Region STS requests are signed for; default: region."},
		"iam_endpoint": {Type: framework.TypeString, Description: "IAM endpoint URL."},
		"max_retries":  {Type: framework.TypeInt, Default: 0, Description: "Retries of a throttled or failed STS call; 0: the SDK default, -1: none."},
		"sts_timeout":  {Type: framework.TypeDurationSecond, Description: "Longest wait for one STS call, retries included; past it the request answers 504. Default 10s."},

		"rotation_period":            {Type: framework.TypeDurationSecond, Description: "Rotate the root key this often (at least 1h); 0, the default, never. Runs on the active node."},
		"disable_automated_rotation": {Type: framework.TypeBool, Description: "Pause scheduled rotation; config/rotate-root still works."},
		"rotation_verify_timeout":    {Type: framework.TypeDurationSecond, Description: "How long a rotation retries proving the new key (IAM takes seconds to propagate one). Default 60s."},
		"old_store_object":           {Type: framework.TypeString, AllowedValues: []any{"destroy", "keep"}, Description: "What a rotation does with the old key's object in the store: destroy (default) or keep."},
		"old_key_grace":              {Type: framework.TypeDurationSecond, Description: "How long the old key stays valid after a rotation switches away from it, so requests signed just before still work. Default 5s, at most 5m."},

		"attestation_check_period": {Type: framework.TypeDurationSecond, Description: "How often the active node checks that the key still cannot leave its store (config/attestation); a regression is logged and shown on config reads. Default 10m; 0 turns it off."},
		"rotate_on_exposure":       {Type: framework.TypeBool, Description: "When the periodic check finds the key can leave its store (e.g. a transit key made exportable), rotate the root key at once, as config/rotate-root does."},
	}
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// parseStrings copies the string fields present in d, trimmed.
func parseStrings(d *framework.FieldData, fields map[string]*string) {
	for name, dst := range fields {
		if v, ok := d.GetOk(name); ok {
			*dst = strings.TrimSpace(v.(string))
		}
	}
}

// parse copies the common fields present in d.
func (c *commonConfig) parse(d *framework.FieldData) {
	parseStrings(d, map[string]*string{
		"access_key": &c.AccessKey, "key_store": &c.KeyStore, "region": &c.Region,
		"sts_endpoint": &c.STSEndpoint, "sts_region": &c.STSRegion, "iam_endpoint": &c.IAMEndpoint,
	})
	if v, ok := d.GetOk("max_retries"); ok {
		c.MaxRetries = v.(int)
	}
	parseStrings(d, map[string]*string{"old_store_object": &c.OldStoreObject})
	for name, dst := range map[string]*time.Duration{"sts_timeout": &c.STSTimeout, "rotation_period": &c.RotationPeriod, "rotation_verify_timeout": &c.RotationVerifyTimeout, "old_key_grace": &c.OldKeyGrace} {
		if v, ok := d.GetOk(name); ok {
			*dst = time.Duration(v.(int)) * time.Second
		}
	}
	if v, ok := d.GetOk("disable_automated_rotation"); ok {
		c.DisableAutoRotation = v.(bool)
	}
	c.parseAttestation(d)
}

func (c *commonConfig) applyDefaults() {
	if c.KeyStore == "" {
		c.KeyStore = "transit"
	}
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.OldStoreObject == "" {
		c.OldStoreObject = "destroy"
	}
}

func (c *commonConfig) validate(env *operatorEnv) error {
	switch {
	case c.RotationPeriod != 0 && (c.RotationPeriod < env.minRotationPeriod || c.RotationPeriod < 0):
		return badInput("rotation_period must be 0 (off) or at least %s", env.minRotationPeriod)
	case c.RotationVerifyTimeout < 0 || c.RotationVerifyTimeout > 10*time.Minute:
		return badInput("rotation_verify_timeout must be between 1s and 10m")
	case c.OldKeyGrace < 0 || c.OldKeyGrace > 5*time.Minute:
		return badInput("old_key_grace must be between 0 and 5m")
	case c.OldStoreObject != "destroy" && c.OldStoreObject != "keep":
		return badInput("old_store_object must be destroy or keep")
	case c.attestationCheckPeriod() < 0 || c.attestationCheckPeriod() > maxAttestationCheckPeriod:
		return badInput("attestation_check_period must be 0 (off) or between 1s and %s", maxAttestationCheckPeriod)
	case c.AccessKey == "":
		return badInput("access_key is required")
	case !accessKeyRe.MatchString(c.AccessKey):
		return badInput("access_key must be 3 to 128 letters, digits or _+=,.@- (an access key ID like AKIAIOSFODNN7EXAMPLE)")
	case storeKinds[c.KeyStore] == nil:
		return badInput("key_store must be one of %s", strings.Join(storeNames(), ", "))
	case !regionRe.MatchString(c.Region):
		return badInput("region is not an AWS region name like eu-west-3")
	case c.STSRegion != "" && !regionRe.MatchString(c.STSRegion):
		return badInput("sts_region is not an AWS region name like eu-west-3")
	case c.MaxRetries < -1 || c.MaxRetries > 10:
		return badInput("max_retries must be between -1 and 10")
	case c.STSTimeout < 0 || c.STSTimeout > maxSTSTimeout:
		return badInput("sts_timeout must be between 1s and %s", maxSTSTimeout)
	}
	return validateURLs(c.endpoints())
}

func (c *commonConfig) endpoints() map[string]string {
	return map[string]string{"sts_endpoint": c.STSEndpoint, "iam_endpoint": c.IAMEndpoint}
}

// endpoints is every URL field of the config, by name.
func (c *pluginConfig) endpoints() map[string]string {
	out := c.commonConfig.endpoints()
	maps.Copy(out, c.store.endpoints())
	return out
}

// validateURLs checks optional endpoint fields, by name.
func validateURLs(fields map[string]string) error {
	for name, u := range fields {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return badInput("%s must be an http or https URL", name)
		}
	}
	return nil
}

func (c *commonConfig) data() map[string]any {
	return map[string]any{
		"access_key":   c.AccessKey,
		"key_store":    c.KeyStore,
		"region":       c.Region,
		"sts_endpoint": c.STSEndpoint,
		"sts_region":   c.STSRegion,
		"iam_endpoint": c.IAMEndpoint,
		"max_retries":  c.MaxRetries,
		"sts_timeout":  int64(c.stsTimeout() / time.Second),

		"rotation_period":            int64(c.RotationPeriod / time.Second),
		"disable_automated_rotation": c.DisableAutoRotation,
		"rotation_verify_timeout":    int64(c.verifyTimeout() / time.Second),
		"old_store_object":           c.OldStoreObject,
		"old_key_grace":              int64(c.oldKeyGrace() / time.Second),
		"last_rotated":               formatTime(c.LastRotated),
		"next_rotation":              formatTime(c.nextRotation()),

		"attestation_check_period": int64(c.attestationCheckPeriod() / time.Second),
		"rotate_on_exposure":       c.RotateOnExposure,
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *commonConfig) oldKeyGrace() time.Duration {
	if c.OldKeyGrace == 0 {
		return 5 * time.Second
	}
	return c.OldKeyGrace
}

func (c *commonConfig) verifyTimeout() time.Duration {
	if c.RotationVerifyTimeout == 0 {
		return 60 * time.Second
	}
	return c.RotationVerifyTimeout
}

// nextRotation is when the schedule rotates next; zero when it does not.
func (c *commonConfig) nextRotation() time.Time {
	if c.RotationPeriod == 0 || c.DisableAutoRotation {
		return time.Time{}
	}
	base := c.RotationBase
	if c.LastRotated.After(base) {
		base = c.LastRotated
	}
	return base.Add(c.RotationPeriod)
}

// awsConfig is how the STS and IAM clients reach AWS, signing through key.
func (c *commonConfig) awsConfig(key hmac.Key, signer *sigv4.Signer) stscreds.Config {
	return stscreds.Config{Key: key, Signer: signer, Region: c.stsRegion(), Endpoint: c.STSEndpoint,
		IAMEndpoint: c.IAMEndpoint, MaxRetries: c.MaxRetries, HTTPClient: awsHTTPClient}
}

// stsRegion is the region STS requests are signed for.
func (c *commonConfig) stsRegion() string {
	if c.STSRegion != "" {
		return c.STSRegion
	}
	return c.Region
}

func (c *commonConfig) stsTimeout() time.Duration {
	if c.STSTimeout == 0 {
		return defaultSTSTimeout
	}
	return c.STSTimeout
}

// MarshalJSON writes the common and the store's fields as one flat object,
// as config has always been stored.
func (c *pluginConfig) MarshalJSON() ([]byte, error) {
	var out map[string]any
	if err := roundTrip(c.commonConfig, &out); err != nil {
		return nil, err
	}
	if c.store != nil {
		var fields map[string]any
		if err := roundTrip(c.store, &fields); err != nil {
			return nil, err
		}
		maps.Copy(out, fields)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	// What cannot be read back must not be stored: a stored config that
	// fails to decode stops every request until it is deleted.
	if err := new(pluginConfig).UnmarshalJSON(data); err != nil {
		return nil, badInput("config: refused, it would not read back once stored (%s)", jsonErrorKind(err))
	}
	return data, nil
}

// jsonErrorKind says what went wrong decoding, without the value.
func jsonErrorKind(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "field " + typeErr.Field + " does not fit its type"
	}
	return "it is not a config"
}

// UnmarshalJSON reads the common fields, then the named store's.
func (c *pluginConfig) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &c.commonConfig); err != nil {
		return err
	}
	kind := storeKinds[c.KeyStore]
	if kind == nil {
		return fmt.Errorf("config names an unknown key store %q", c.KeyStore)
	}
	c.store = kind.newParams()
	return json.Unmarshal(data, c.store)
}

// roundTrip copies in to out through JSON; numbers stay as written
// (json.Number), so an integer above 2^53 is not rounded through float64.
func roundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(out)
}

// clone is a deep copy, so a write can change it and fail without harm.
func (c *pluginConfig) clone() (*pluginConfig, error) {
	out := new(pluginConfig)
	if err := roundTrip(c, out); err != nil {
		return nil, err
	}
	return out, nil
}

// config returns the config, from memory once read; nil when there is none.
func (b *backend) config(ctx context.Context, s logical.Storage) (*pluginConfig, error) {
	if slot := b.configCache.Load(); slot != nil {
		return slot.cfg, nil
	}
	gen := b.generation.Load()
	entry, err := s.Get(ctx, configStoragePath)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var cfg *pluginConfig
	if entry != nil {
		cfg = new(pluginConfig)
		if err := entry.DecodeJSON(cfg); err != nil {
			return nil, fmt.Errorf("decode config: %w", err)
		}
	}
	// Keep it only if no write or invalidation came in meanwhile.
	b.cacheLock.Lock()
	if b.generation.Load() == gen {
		b.configCache.Store(&configSlot{cfg: cfg})
	}
	b.cacheLock.Unlock()
	return cfg, nil
}

// configSlot wraps the cached config so that "no config" can be cached too.
type configSlot struct{ cfg *pluginConfig }

// putConfig stores cfg and caches it; nil deletes the config.
func (b *backend) putConfig(ctx context.Context, s logical.Storage, cfg *pluginConfig) error {
	var err error
	if cfg == nil {
		err = s.Delete(ctx, configStoragePath)
	} else {
		var entry *logical.StorageEntry
		if entry, err = logical.StorageEntryJSON(configStoragePath, cfg); err == nil {
			err = s.Put(ctx, entry)
		}
	}
	b.cacheLock.Lock()
	defer b.cacheLock.Unlock()
	b.generation.Add(1)
	if err != nil {
		b.configCache.Store(nil) // unknown: read it again
		return err
	}
	b.configCache.Store(&configSlot{cfg: cfg})
	return nil
}
