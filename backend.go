// Package awshmac is a Vault secrets engine that signs AWS requests and
// mints STS credentials with an AWS access key whose secret lives in a key
// store that never hands it back: Vault transit, a PKCS#11 HSM, a TPM 2.0
// or a Tink keyset sealed by a KMS.
package awshmac

import (
	"context"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

// Version is reported to Vault; set at build time with -ldflags.
var Version = "v0.1.0"

const operationPrefix = "aws-hmac"

// backend is the secrets engine. The opened key, its signer (with the
// derived-key cache) and the STS client are cached behind lock and dropped
// on every config write, on Invalidate and on cleanup.
type backend struct {
	*framework.Backend

	lock   sync.RWMutex
	key    storeKey
	signer *sigv4.Signer
	sts    *sts.Client
}

// Factory returns a configured backend.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend() *backend {
	b := &backend{}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			// Key-store references and the credentials that reach the store.
			SealWrapStorage: []string{configStoragePath},
		},
		Paths: framework.PathAppend(
			[]*framework.Path{pathConfig(b)},
			pathRoles(b),
			[]*framework.Path{pathCreds(b, "creds"), pathCreds(b, "sts"), pathSign(b)},
		),
		Secrets:        []*framework.Secret{secretCreds(b)},
		Invalidate:     b.invalidate,
		Clean:          b.clean,
		InitializeFunc: b.initialize,
		RunningVersion: Version,
	}
	return b
}

// initialize runs on mount and on every plugin (re)load. It does nothing
// that a second call would repeat: the key is opened lazily on first use.
func (b *backend) initialize(context.Context, *logical.InitializationRequest) error {
	return nil
}

func (b *backend) invalidate(_ context.Context, key string) {
	if key == configStoragePath {
		b.reset()
	}
}

func (b *backend) clean(context.Context) { b.reset() }

// reset drops the cached key, client and every derived key.
func (b *backend) reset() {
	b.lock.Lock()
	defer b.lock.Unlock()
	b.resetLocked()
}

func (b *backend) resetLocked() {
	if b.key != nil {
		_ = b.key.Close()
	}
	if b.signer != nil {
		b.signer.Forget()
	}
	b.key, b.signer, b.sts = nil, nil, nil
}

// client returns the opened key, its signer and an STS client, opening the
// key on first use after a (re)configuration.
func (b *backend) client(ctx context.Context, s logical.Storage) (storeKey, *sigv4.Signer, *sts.Client, error) {
	b.lock.RLock()
	key, signer, client := b.key, b.signer, b.sts
	b.lock.RUnlock()
	if key != nil {
		return key, signer, client, nil
	}

	b.lock.Lock()
	defer b.lock.Unlock()
	if b.key != nil {
		return b.key, b.signer, b.sts, nil
	}
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg == nil {
		return nil, nil, nil, errNotConfigured
	}
	key, err = openKey(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	signer = sigv4.NewSigner()
	client, err = newSTSClient(cfg, key, signer)
	if err != nil {
		_ = key.Close()
		return nil, nil, nil, err
	}
	b.key, b.signer, b.sts = key, signer, client
	return key, signer, client, nil
}

func newSTSClient(cfg *pluginConfig, key storeKey, signer *sigv4.Signer) (*sts.Client, error) {
	return stscreds.NewSTSClient(stscreds.Config{
		Key: key, Signer: signer, Region: cfg.stsRegion(), Endpoint: cfg.STSEndpoint,
		IAMEndpoint: cfg.IAMEndpoint, MaxRetries: cfg.MaxRetries,
	})
}

const backendHelp = `
The aws-hmac secrets engine keeps an AWS secret access key in a key store
that never returns it (Vault transit, a PKCS#11 HSM, a TPM 2.0, or a Tink
keyset sealed by a KMS) and uses it to sign AWS requests and to mint STS
credentials per role.

Configure the key with "config", define roles with "roles/<name>", then read
"creds/<role>" for STS credentials or write "sign/<role>" to have a request
signed.
`
