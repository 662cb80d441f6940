// Package awshmac is a Vault secrets engine that signs AWS requests and
// mints STS credentials with an AWS access key whose secret lives in a key
// store that never hands it back: Vault transit, a PKCS#11 HSM, a TPM 2.0
// or a Tink keyset sealed by a KMS.
package awshmac

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-kms-wrapping/entropy/v2"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/version"
)

const operationPrefix = "aws-hmac"

// backend is the secrets engine. The config and the roles are cached in
// memory (updated by this node's writes, dropped by Invalidate for others'),
// and the engine — opened key, signer, STS client — is built once per
// config and swapped atomically.
type backend struct {
	*framework.Backend

	// configLock serialises config writes and engine builds.
	configLock sync.Mutex
	// cacheLock orders cache fills against writes and invalidations;
	// generation counts those, so a fill that raced one is not kept.
	cacheLock   sync.Mutex
	generation  atomic.Uint64
	configCache atomic.Pointer[configSlot]
	current     atomic.Pointer[engine]

	roles roleCache

	// revocations orders the rebuilds of each target role's deny policy.
	revocations revocationLocks

	// screened mirrors the paths' patterns for HandleRequest's screen.
	screened []screenedPath

	// refreshInterval is how often a transit key's version is reread.
	refreshInterval time.Duration

	// env is what the plugin's registration environment allows.
	env operatorEnv

	// stores reaches the key store: its opener (a test seam) and the
	// back-off from a store refusing the credential (store_backoff.go).
	stores storeAccess

	// rotationHook, in tests, stops a rotation after a step, as a crash would.
	rotationHook func(step string) bool
}

// Factory returns a configured backend.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return factory(ctx, conf, os.Getenv)
}

// factory takes the environment as a function: the test seam for the
// registration environment.
func factory(ctx context.Context, conf *logical.BackendConfig, getenv func(string) string) (logical.Backend, error) {
	b := newBackend()
	b.env = loadOperatorEnv(getenv)
	// A system view with its own entropy source is used as it is: wrapping
	// it would hide that source from the framework.
	if _, sourcer := conf.System.(entropy.Sourcer); conf.System != nil && !sourcer {
		sys := *conf
		sys.System = &cachedSystemView{SystemView: conf.System}
		conf = &sys
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend() *backend {
	b := &backend{refreshInterval: defaultRefreshInterval}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			// Key-store references and the credentials that reach the store.
			SealWrapStorage: []string{configStoragePath},
		},
		Paths: framework.PathAppend(
			[]*framework.Path{pathConfig(b), pathConfigRotateRoot(b), pathConfigAttestation(b), pathConfigTPMNode(b)},
			pathRoles(b),
			[]*framework.Path{pathCreds(b), pathSign(b), pathRoleRevokeSessions(b)},
		),
		Secrets:           []*framework.Secret{secretCreds(b)},
		Invalidate:        b.invalidate,
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walRollbackMinAge,
		Clean:             b.clean,
		InitializeFunc:    b.initialize,
		PeriodicFunc:      b.periodic,
		// The build's version (internal/version): what `vault plugin register -version` must name.
		RunningVersion: version.String(),
	}
	b.initScreen()
	return b
}

// initialize runs on mount and on every plugin (re)load: the key is opened
// in the background, so its tokens are renewed even before the first request.
func (b *backend) initialize(_ context.Context, req *logical.InitializationRequest) error {
	go b.ensureEngine(req.Storage)
	return nil
}

// periodic keeps an engine open while a config exists, for token renewal,
// rotates the root key when its schedule says so, checks that the key
// still cannot leave its store (attestation.go), and drops expired
// sessions from the deny policies (revocation.go).
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	b.ensureEngine(req.Storage)
	b.rotateIfDue(ctx, req.Storage)
	b.checkAttestationIfDue(ctx, req.Storage)
	b.pruneRevocations(ctx, req.Storage)
	return nil
}

func (b *backend) ensureEngine(s logical.Storage) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := b.withEngine(ctx, s, func(*engine) error { return nil })
	if err != nil && err != errNotConfigured && !isAuthBackoff(err) { // the back-off logs its refusals
		b.Logger().Warn("cannot open the configured key", "error", err)
	}
}

// invalidate drops what another node changed.
func (b *backend) invalidate(_ context.Context, key string) {
	switch {
	case key == configStoragePath:
		b.dropConfig()
	case strings.HasPrefix(key, rolePrefix):
		b.roles.drop(strings.TrimPrefix(key, rolePrefix))
	}
}

func (b *backend) clean(context.Context) {
	b.dropConfig()
}

// dropConfig forgets the cached config and retires the engine.
func (b *backend) dropConfig() {
	b.cacheLock.Lock()
	b.generation.Add(1)
	b.configCache.Store(nil)
	old := b.current.Swap(nil)
	b.cacheLock.Unlock()
	if old != nil {
		old.retire()
	}
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
