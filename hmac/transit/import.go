package transit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/kwp/subtle"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// ErrWrappingKeyChanged is an import refused because the mount's wrapping
// key is not the one Config.WrappingKey names: whoever holds the new one's
// private key could unwrap the secret.
var ErrWrappingKeyChanged = errors.New("transit: the mount's wrapping key changed")

// Import creates the transit key cfg.Name of type hmac holding
// K = "AWS4"+secret, wrapped for transit's BYOK import, not exportable and
// without plaintext backup, and returns it. It fails if the key exists: new
// secrets for an existing key go through ImportVersion.
func Import(ctx context.Context, cfg Config, accessKeyID, secret string) (*Key, error) {
	if secret == "" {
		return nil, errors.New("transit: no secret")
	}
	k, err := newKey(cfg, accessKeyID)
	if err != nil {
		return nil, err
	}
	existing, err := k.client.Logical().ReadWithContext(ctx, k.mount+"/keys/"+k.name)
	if err != nil {
		return nil, k.storeError("read key", err)
	}
	if existing != nil {
		return nil, fmt.Errorf("transit: key %q already exists on mount %q; import a new version instead: %w", k.name, k.mount, hmac.ErrKeyExists)
	}
	if err := k.importK(ctx, "/import", secret, map[string]any{
		"type":                   "hmac",
		"exportable":             false,
		"allow_plaintext_backup": false,
		"allow_rotation":         false,
		"derived":                false,
	}); err != nil {
		return nil, err
	}
	if err := k.Refresh(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// ImportVersion adds secret as the key's next version and switches to it
// (unless a version is pinned). The key's identity changes with it.
func (k *Key) ImportVersion(ctx context.Context, secret string) error {
	if secret == "" {
		return errors.New("transit: secret is required")
	}
	if err := k.importK(ctx, "/import_version", secret, map[string]any{}); err != nil {
		return err
	}
	return k.Refresh(ctx)
}

// WrappingKeyFingerprint is the SHA-256, in hex, of the DER
// SubjectPublicKeyInfo of the wrapping key cfg's mount presents now.
func WrappingKeyFingerprint(ctx context.Context, cfg Config) (string, error) {
	client, err := cfg.client()
	if err != nil {
		return "", err
	}
	k := &Key{client: client, mount: cfg.mount()}
	_, fp, err := k.wrappingKey(ctx)
	return fp, err
}

// WrappingKeyFingerprint is the fingerprint of the wrapping key the last
// import through k used; empty before one.
func (k *Key) WrappingKeyFingerprint() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.wrapping
}

// importK wraps K with a fresh AES-256 key (AES-KWP) and that key with the
// mount's RSA wrapping key (OAEP-SHA256), as transit's BYOK import expects,
// once the wrapping key is known to be the expected one.
func (k *Key) importK(ctx context.Context, suffix, secret string, params map[string]any) error {
	pub, fp, err := k.wrappingKey(ctx)
	if err != nil {
		return err
	}
	if k.wantWrapping != "" && fp != k.wantWrapping {
		return fmt.Errorf("%w: mount %q at %s presents wrapping key %s, not %s", ErrWrappingKeyChanged, k.mount, k.client.Address(), fp, k.wantWrapping)
	}
	key := []byte("AWS4" + secret)
	defer clear(key)
	ephemeral := make([]byte, 32)
	defer clear(ephemeral)
	if _, err := rand.Read(ephemeral); err != nil {
		return err
	}
	kwp, err := subtle.NewKWP(ephemeral)
	if err != nil {
		return fmt.Errorf("transit: %w", err)
	}
	wrappedK, err := kwp.Wrap(key)
	if err != nil {
		return fmt.Errorf("transit: wrap: %w", err)
	}
	wrappedEphemeral, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, ephemeral, nil)
	if err != nil {
		return fmt.Errorf("transit: wrap: %w", err)
	}
	params["ciphertext"] = base64.StdEncoding.EncodeToString(append(wrappedEphemeral, wrappedK...))
	params["hash_function"] = "SHA256"
	if _, err := k.client.Logical().WriteWithContext(ctx, k.mount+"/keys/"+k.name+suffix, params); err != nil {
		return k.storeError("import", err)
	}
	k.mu.Lock()
	k.wrapping = fp
	k.mu.Unlock()
	return nil
}

// wrappingKey reads the mount's wrapping key and its fingerprint.
func (k *Key) wrappingKey(ctx context.Context) (*rsa.PublicKey, string, error) {
	s, err := k.client.Logical().ReadWithContext(ctx, k.mount+"/wrapping_key")
	if err != nil {
		return nil, "", k.storeError("read wrapping key", err)
	}
	if s == nil || s.Data == nil {
		return nil, "", fmt.Errorf("transit: mount %q has no wrapping key", k.mount)
	}
	pemKey, _ := s.Data["public_key"].(string)
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		return nil, "", errors.New("transit: wrapping key is not PEM")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("transit: wrapping key: %w", err)
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, "", errors.New("transit: wrapping key is not RSA")
	}
	// Re-encoded, so that the fingerprint does not depend on how Vault wrote it.
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("transit: wrapping key: %w", err)
	}
	sum := sha256.Sum256(der)
	return pub, hex.EncodeToString(sum[:]), nil
}

// Destroy deletes the transit key cfg names: transit first has to be told
// deletion is allowed, so the token needs update on <mount>/keys/<name>/config
// and delete on <mount>/keys/<name>. For an old key a rotation has replaced.
func Destroy(ctx context.Context, cfg Config) error {
	k, err := newKey(cfg, "-")
	if err != nil {
		return err
	}
	if _, err := k.client.Logical().WriteWithContext(ctx, k.mount+"/keys/"+k.name+"/config", map[string]any{"deletion_allowed": true}); err != nil {
		return k.storeError("allow deletion", err)
	}
	if _, err := k.client.Logical().DeleteWithContext(ctx, k.mount+"/keys/"+k.name); err != nil {
		return k.storeError("delete key", err)
	}
	return nil
}
