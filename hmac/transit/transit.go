// Package transit keeps an AWS secret in a Vault transit key of type hmac,
// imported once by BYOK (never exportable, no plaintext backup), and asks
// transit for HMAC-SHA256 with it.
//
// Lock the key down with a policy that grants only update on
// <mount>/hmac/<name> and denies <mount>/keys/<name>/config,
// <mount>/export/* and <mount>/backup/*: whoever can write the key's config
// can make it exportable.
package transit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// Config locates a transit key and the Vault that holds it.
type Config struct {
	Address   string // Vault address; empty: VAULT_ADDR or the API default
	Token     string
	Namespace string
	CACert    string // PEM file of the CA that signed Vault's certificate
	Mount     string // default "transit"
	Name      string // the transit key's name
	// Version pins a key version; 0 uses the latest.
	Version int
	// WrappingKey, when set, is the fingerprint (see WrappingKeyFingerprint)
	// the mount's wrapping key must have for an import to wrap a secret for it.
	WrappingKey string
	// Client, when set, is used instead of Address, Token, Namespace and CACert.
	Client *api.Client
}

func (c *Config) mount() string {
	if c.Mount == "" {
		return "transit"
	}
	return strings.Trim(c.Mount, "/")
}

// NewClient returns the Vault API client a Key made from cfg uses: for
// callers that look after its token (lookup, renewal).
func NewClient(cfg Config) (*api.Client, error) { return cfg.client() }

func (c *Config) client() (*api.Client, error) {
	if c.Client != nil {
		return c.Client, nil
	}
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	if c.Address != "" {
		cfg.Address = c.Address
	}
	if c.CACert != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: c.CACert}); err != nil {
			return nil, fmt.Errorf("transit: TLS: %w", err)
		}
	}
	cfg.DisableRedirects = true // the token must not follow a redirect elsewhere
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("transit: %w", err)
	}
	client.SetToken(c.Token)
	if c.Namespace != "" {
		client.SetNamespace(c.Namespace)
	}
	return client, nil
}

var _ hmac.Key = (*Key)(nil)

// Key is an AWS access key whose secret is a transit hmac key.
type Key struct {
	accessKeyID string
	client      *api.Client
	mount, name string
	pinned      int
	// wantWrapping and wrapping: the wrapping key an import must use, and
	// the one the last import used.
	wantWrapping, wrapping string

	mu       sync.RWMutex
	version  int    // the version HMACs use: pinned, or the latest when opened
	identity string // Vault, namespace, mount, key and version
	closed   bool
}

// Open returns the key an earlier Import (or transit's own import endpoint)
// created. It checks that the key exists and is of type hmac.
func Open(ctx context.Context, cfg Config, accessKeyID string) (*Key, error) {
	k, err := newKey(cfg, accessKeyID)
	if err != nil {
		return nil, err
	}
	if err := k.Refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

func newKey(cfg Config, accessKeyID string) (*Key, error) {
	if accessKeyID == "" {
		return nil, errors.New("transit: no access key ID")
	}
	if cfg.Name == "" {
		return nil, errors.New("transit: no key name")
	}
	client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return &Key{accessKeyID: accessKeyID, client: client, mount: cfg.mount(), name: cfg.Name, pinned: cfg.Version, wantWrapping: cfg.WrappingKey}, nil
}

// Refresh rereads the key's latest version, so that a version imported since
// Open gets a new identity (and fresh derived keys).
func (k *Key) Refresh(ctx context.Context) error {
	info, err := k.read(ctx)
	if err != nil {
		return err
	}
	if info.typ != "hmac" {
		return fmt.Errorf("transit: key %q is of type %q, not hmac: it would HMAC with a random key, not the AWS secret", k.name, info.typ)
	}
	if info.exportable || info.plaintextBackup {
		return fmt.Errorf("transit: key %q is exportable or allows plaintext backup; refusing to use it", k.name)
	}
	v := info.latest
	if k.pinned > 0 {
		if k.pinned > info.latest {
			return fmt.Errorf("transit: key %q has no version %d (latest is %d)", k.name, k.pinned, info.latest)
		}
		v = k.pinned
	}
	identity := "transit:" + k.client.Address() + "/" + k.client.Namespace() + "/" + k.mount + "/" + k.name + ":v" + strconv.Itoa(v)
	k.mu.Lock()
	k.version, k.identity = v, identity
	k.mu.Unlock()
	return nil
}

type keyInfo struct {
	typ                         string
	latest                      int
	exportable, plaintextBackup bool
}

func (k *Key) read(ctx context.Context) (keyInfo, error) {
	s, err := k.client.Logical().ReadWithContext(ctx, k.mount+"/keys/"+k.name)
	if err != nil {
		return keyInfo{}, k.storeError("read key", err)
	}
	if s == nil || s.Data == nil {
		return keyInfo{}, fmt.Errorf("transit: key %q not found on mount %q", k.name, k.mount)
	}
	var info keyInfo
	info.typ, _ = s.Data["type"].(string)
	info.exportable, _ = s.Data["exportable"].(bool)
	info.plaintextBackup, _ = s.Data["allow_plaintext_backup"].(bool)
	info.latest, err = intValue(s.Data["latest_version"])
	if err != nil {
		return keyInfo{}, fmt.Errorf("transit: key %q: latest_version: %w", k.name, err)
	}
	return info, nil
}

// AccessKeyID returns the AWS access key ID.
func (k *Key) AccessKeyID() string { return k.accessKeyID }

// Reference names the key in transit: its mount, name and the version in use.
type Reference struct {
	Mount, Name string
	Version     int
}

// Reference returns where the key lives and the version HMACs use.
func (k *Key) Reference() Reference {
	return Reference{Mount: k.mount, Name: k.name, Version: k.Version()}
}

// Version is the key version HMACs use.
func (k *Key) Version() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.version
}

// KeyIdentity names the Vault, mount, key and version; see hmac.Key.
func (k *Key) KeyIdentity() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.identity
}

// HMAC asks transit for HMAC-SHA256 of msg with the key's version.
// A failure rereads the key, so a trimmed or replaced version is noticed
// at once rather than at the next periodic Refresh.
func (k *Key) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	k.mu.RLock()
	version, closed := k.version, k.closed
	k.mu.RUnlock()
	if closed {
		return nil, errors.New("transit: key closed")
	}
	s, err := k.client.Logical().WriteWithContext(ctx, k.mount+"/hmac/"+k.name+"/sha2-256", map[string]any{
		"input":       base64.StdEncoding.EncodeToString(msg),
		"key_version": version,
	})
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 400 {
			_ = k.Refresh(ctx)
		}
		return nil, k.storeError("hmac", err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("transit: key %q: empty hmac response", k.name)
	}
	out, _ := s.Data["hmac"].(string)
	mac, err := parseHMAC(out, version)
	if err != nil {
		_ = k.Refresh(ctx)
	}
	return mac, err
}

// parseHMAC decodes transit's "vault:vN:<base64>" and checks N.
func parseHMAC(s string, wantVersion int) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "vault:v")
	if !ok {
		return nil, errors.New("transit: hmac response is not of the form vault:vN:<base64>")
	}
	vs, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errors.New("transit: hmac response is not of the form vault:vN:<base64>")
	}
	v, err := strconv.Atoi(vs)
	if err != nil || v < 1 {
		return nil, fmt.Errorf("transit: hmac response names version %q", vs)
	}
	if wantVersion > 0 && v != wantVersion {
		return nil, fmt.Errorf("transit: hmac computed with version %d, want %d", v, wantVersion)
	}
	mac, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(mac) != 32 {
		return nil, errors.New("transit: hmac response is not a base64 SHA-256 HMAC")
	}
	return mac, nil
}

// storeError reports a transit failure without anything from the request.
// Vault answers 403 (401 behind some proxies) when the token is invalid,
// expired, revoked or lacks the policy: the same token cannot do better, so
// that wraps hmac.ErrAuth.
func (k *Key) storeError(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("transit: %s on key %q at %s: HTTP %d: %s", op, k.name, k.client.Address(), re.StatusCode, strings.Join(re.Errors, "; "))
		if re.StatusCode == 401 || re.StatusCode == 403 {
			return fmt.Errorf("%s (the transit token is invalid, expired or revoked, or its policy does not allow this): %w", msg, hmac.ErrAuth)
		}
		return errors.New(msg)
	}
	return fmt.Errorf("transit: %s on key %q at %s: %w", op, k.name, k.client.Address(), err)
}

// Close makes later HMACs fail; the API client holds only idle connections.
func (k *Key) Close() error {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	return nil
}

func intValue(v any) (int, error) {
	switch n := v.(type) {
	case float64:
		return int(n), nil
	case int:
		return n, nil
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		return int(i), err
	}
	return 0, fmt.Errorf("unexpected %T", v)
}
