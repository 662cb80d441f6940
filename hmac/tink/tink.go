// Package tink keeps an AWS secret as a Tink HMAC-SHA256 keyset encrypted
// under a key-encryption key (KEK) held by a KMS: Vault transit
// (hcvault://), Google Cloud KMS (gcp-kms://) or AWS KMS (aws-kms://), or, for
// development only, a local KEK keyset file (insecure-local-kek://PATH).
//
// Only the encrypted keyset is stored. Unlike the other key stores, the
// keyset is decrypted into this process's memory to compute HMACs: the KEK
// protects K at rest, not in use.
package tink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-awskms/v3/integration/awskms"
	"github.com/tink-crypto/tink-go-gcpkms/v2/integration/gcpkms"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
	tinkhmac "github.com/tink-crypto/tink-go/v2/mac/hmac"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// LocalKEKScheme names a KEK kept in a cleartext keyset file: development only.
const LocalKEKScheme = "insecure-local-kek://"

// Config says how to reach the KEK and, once imported, holds the keyset.
type Config struct {
	// KEKURI names the key-encryption key, e.g.
	// hcvault://vault.example:8200/transit/keys/aws-hmac-kek.
	KEKURI string
	// VaultClient reaches Vault for hcvault:// KEKs (address, token, TLS).
	VaultClient *api.Client
	// KMSClients, when one supports KEKURI, is used instead of the built-in
	// clients (for example an AWS KMS client with explicit credentials).
	KMSClients []registry.KMSClient
	// Keyset is the encrypted keyset in Tink's JSON format: the reference to store.
	Keyset []byte
	// AssociatedData binds the keyset to its use; it must match on Open.
	AssociatedData []byte
}

// kek returns the AEAD for cfg.KEKURI: the caller's KMS clients first, then
// Tink's own clients for Vault, AWS KMS and Google Cloud KMS.
func (c *Config) kek(ctx context.Context) (*kekAEAD, error) {
	a, err := c.kekAEAD(ctx)
	if err != nil {
		return nil, err
	}
	return &kekAEAD{AEAD: a}, nil
}

func (c *Config) kekAEAD(ctx context.Context) (tink.AEAD, error) {
	uri := c.KEKURI
	for _, client := range c.KMSClients {
		if client.Supported(uri) {
			return getAEAD(client, uri)
		}
	}
	switch {
	case uri == "":
		return nil, errors.New("tink: no KEK URI")
	case strings.HasPrefix(uri, LocalKEKScheme):
		return localKEK(strings.TrimPrefix(uri, LocalKEKScheme))
	case strings.HasPrefix(uri, "hcvault://"):
		if c.VaultClient == nil {
			return nil, errors.New("tink: hcvault:// KEK needs a Vault client")
		}
		client, err := hcvault.NewClientWithAEADOptions("hcvault://", c.VaultClient.Logical())
		if err != nil {
			return nil, fmt.Errorf("tink: %w", err)
		}
		return getAEAD(client, uri)
	case strings.HasPrefix(uri, "aws-kms://"):
		// AWS credentials come from the default chain of the plugin's
		// process: environment, shared configuration, or an instance role.
		client, err := awskms.NewClientWithOptions(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("tink: AWS KMS client: %w", err)
		}
		return getAEAD(client, uri)
	case strings.HasPrefix(uri, "gcp-kms://"):
		// Google credentials come from Application Default Credentials.
		client, err := gcpkms.NewClient(ctx, "gcp-kms://")
		if err != nil {
			return nil, fmt.Errorf("tink: Google Cloud KMS client: %w", err)
		}
		return getAEAD(client, uri)
	}
	return nil, fmt.Errorf("tink: no KMS client for KEK %q (supported: hcvault://, aws-kms://, gcp-kms://, %s)", uri, LocalKEKScheme)
}

// kekAEAD notes a KMS refusing the plugin's credential: Tink reports a KEK
// failure as text only, so the refusal is caught on its way through.
type kekAEAD struct {
	tink.AEAD
	mu      sync.Mutex
	refused error
}

func (a *kekAEAD) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	out, err := a.AEAD.Encrypt(plaintext, associatedData)
	a.note(err)
	return out, err
}

func (a *kekAEAD) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	out, err := a.AEAD.Decrypt(ciphertext, associatedData)
	a.note(err)
	return out, err
}

func (a *kekAEAD) note(err error) {
	if err != nil && refusedCredential(err) {
		a.mu.Lock()
		a.refused = err
		a.mu.Unlock()
	}
}

// failed is err, wrapping hmac.ErrAuth when the KMS refused the credential.
func (a *kekAEAD) failed(err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused == nil {
		return err
	}
	return fmt.Errorf("%w; the KMS refused the plugin's credential (%v): %w", err, a.refused, hmac.ErrAuth)
}

// kmsAuthCodes are AWS KMS's answers to a credential it does not accept.
var kmsAuthCodes = map[string]bool{
	"AccessDeniedException": true, "UnrecognizedClientException": true, "InvalidSignatureException": true,
	"ExpiredTokenException": true, "InvalidClientTokenId": true, "MissingAuthenticationToken": true,
	"IncompleteSignature": true, "NotAuthorized": true,
}

// refusedCredential tells an authentication or authorisation refusal (Vault
// transit's 403, AWS KMS's access errors, any 401/403) from a KMS that is
// down or a keyset that does not decrypt.
func refusedCredential(err error) bool {
	var vault *api.ResponseError
	if errors.As(err, &vault) {
		return vault.StatusCode == 401 || vault.StatusCode == 403
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) && kmsAuthCodes[coded.ErrorCode()] {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &status) && (status.HTTPStatusCode() == 401 || status.HTTPStatusCode() == 403)
}

func getAEAD(client registry.KMSClient, uri string) (tink.AEAD, error) {
	a, err := client.GetAEAD(uri)
	if err != nil {
		return nil, fmt.Errorf("tink: KEK %s: %w", uri, err)
	}
	return a, nil
}

func localKEK(path string) (tink.AEAD, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tink: local KEK: %w", err)
	}
	defer f.Close()
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(f))
	if err != nil {
		return nil, fmt.Errorf("tink: local KEK %s: %w", path, err)
	}
	return aead.New(h)
}

// NewLocalKEK writes a fresh AES-256-GCM keyset, in clear, to path, for use
// as insecure-local-kek://PATH in development. Never use it in production.
func NewLocalKEK(path string) error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

var _ hmac.Key = (*Key)(nil)

// Key is an AWS access key whose secret is a KEK-encrypted Tink keyset.
type Key struct {
	accessKeyID string
	keyset      []byte
	identity    string

	mu  sync.RWMutex // Close waits for HMACs in flight
	mac tink.MAC
}

func newKey(accessKeyID string, mac tink.MAC, keyset []byte, kekURI string) *Key {
	sum := sha256.Sum256(keyset)
	return &Key{accessKeyID: accessKeyID, mac: mac, keyset: keyset,
		identity: "tink:" + kekURI + ":" + hex.EncodeToString(sum[:16])}
}

// Import builds a raw HMAC-SHA256 keyset from K = "AWS4"+secret and
// encrypts it under the KEK. Key.Reference returns the ciphertext to store.
func Import(ctx context.Context, cfg Config, accessKeyID, secret string) (*Key, error) {
	if accessKeyID == "" || secret == "" {
		return nil, errors.New("tink: access key ID and secret are required")
	}
	if len(cfg.Keyset) > 0 {
		return nil, fmt.Errorf("tink: the configuration already holds a keyset; import into an empty one: %w", hmac.ErrKeyExists)
	}
	kek, err := cfg.kek(ctx)
	if err != nil {
		return nil, err
	}
	value := []byte("AWS4" + secret)
	defer clear(value)
	params, err := tinkhmac.NewParameters(tinkhmac.ParametersOpts{
		KeySizeInBytes: len(value), TagSizeInBytes: 32, HashType: tinkhmac.SHA256, Variant: tinkhmac.VariantNoPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	key, err := tinkhmac.NewKey(secretdata.NewBytesFromData(value, insecuresecretdataaccess.Token{}), params, 0)
	if err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	m := keyset.NewManager()
	id, err := m.AddKey(key)
	if err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewJSONWriter(&buf), kek, cfg.AssociatedData); err != nil {
		return nil, kek.failed(fmt.Errorf("tink: encrypt keyset under %s: %w", cfg.KEKURI, err))
	}
	primitive, err := mac.New(h)
	if err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	return newKey(accessKeyID, primitive, buf.Bytes(), cfg.KEKURI), nil
}

// Open decrypts the keyset with the KEK.
func Open(ctx context.Context, cfg Config, accessKeyID string) (*Key, error) {
	if accessKeyID == "" {
		return nil, errors.New("tink: no access key ID")
	}
	if len(cfg.Keyset) == 0 {
		return nil, errors.New("tink: no keyset")
	}
	kek, err := cfg.kek(ctx)
	if err != nil {
		return nil, err
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewJSONReader(bytes.NewReader(cfg.Keyset)), kek, cfg.AssociatedData)
	if err != nil {
		return nil, kek.failed(fmt.Errorf("tink: decrypt keyset with %s: %w", cfg.KEKURI, err))
	}
	primitive, err := mac.New(h)
	if err != nil {
		return nil, fmt.Errorf("tink: %w", err)
	}
	return newKey(accessKeyID, primitive, append([]byte(nil), cfg.Keyset...), cfg.KEKURI), nil
}

// AccessKeyID returns the AWS access key ID.
func (k *Key) AccessKeyID() string { return k.accessKeyID }

// Reference returns the encrypted keyset to store.
func (k *Key) Reference() []byte { return append([]byte(nil), k.keyset...) }

// KeyIdentity names the keyset by a hash of its ciphertext; see hmac.Key.
func (k *Key) KeyIdentity() string { return k.identity }

// HMAC computes HMAC-SHA256 of msg with the keyset.
func (k *Key) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if msg == nil {
		msg = []byte{}
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.mac.ComputeMAC(msg)
}

// Close drops the keyset from the Key; HMACs after it fail.
func (k *Key) Close() error {
	k.mu.Lock()
	k.mac = closedMAC{}
	k.mu.Unlock()
	return nil
}

type closedMAC struct{}

func (closedMAC) ComputeMAC([]byte) ([]byte, error) { return nil, errors.New("tink: key closed") }
func (closedMAC) VerifyMAC([]byte, []byte) error    { return errors.New("tink: key closed") }
