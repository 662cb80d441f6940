package awshmac

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

// awsHTTPClient carries every STS and IAM call: one pool of connections,
// however many clients the engines and rotations make.
// It follows no redirect: a signed request goes to the endpoint the
// registration allows, and nowhere it is sent on to.
var awsHTTPClient = &http.Client{Transport: &http.Transport{
	Proxy:               http.ProxyFromEnvironment,
	MaxIdleConns:        64,
	MaxIdleConnsPerHost: 16,
	IdleConnTimeout:     90 * time.Second,
	TLSHandshakeTimeout: 10 * time.Second,
	ForceAttemptHTTP2:   true,
}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// defaultRefreshInterval is how often a key that can change behind the
// plugin's back (a transit key's latest version) is reread.
const defaultRefreshInterval = time.Minute

// engine is everything one config opens: the key, its signer with the
// derived-key cache, the STS client, and the goroutines that keep the key
// fresh and its tokens alive. It is built in one place (newEngine),
// installed atomically, and closed only after the last request using it
// has released it.
type engine struct {
	cfg    *pluginConfig
	key    storeKey
	signer *sigv4.Signer
	sts    *sts.Client
	iam    *iam.Client // for rotation; signs with the same signer
	// created is when IAM made the key, asked once for config reads.
	created atomic.Pointer[time.Time]
	tokens  []*tokenWatch
	stop    context.CancelFunc

	sessions roleSessions // sign_with=session roles' STS sessions

	mu      sync.Mutex
	users   int
	retired bool
}

// refresher is a key whose version can change in its store.
type refresher interface {
	Refresh(ctx context.Context) error
}

// newEngine builds the engine for cfg around an opened key; it takes
// ownership of key.
func (b *backend) newEngine(cfg *pluginConfig, key storeKey) (*engine, error) {
	signer := sigv4.NewSigner()
	client, err := stscreds.NewSTSClient(cfg.awsConfig(key, signer))
	var iamClient *iam.Client
	if err == nil {
		iamClient, err = stscreds.NewIAMClient(cfg.awsConfig(key, signer))
	}
	if err != nil {
		_ = key.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &engine{cfg: cfg, key: key, signer: signer, sts: client, iam: iamClient, stop: stop}
	for _, t := range cfg.store.vaultTokens() {
		w := &tokenWatch{field: t.field, logger: b.Logger()}
		e.tokens = append(e.tokens, w)
		if c, err := t.client(); err == nil {
			go w.run(ctx, c)
		} else {
			w.report("cannot make a client: "+err.Error(), true)
		}
	}
	if rk, ok := key.(reportingKey); ok {
		if _, ok := rk.storeKey.(refresher); ok {
			go e.refreshEvery(ctx, rk, b.refreshInterval) // through the back-off
		}
	}
	return e, nil
}

// refreshEvery rereads the key's version, so a version imported behind the
// plugin's back is used within one interval.
func (e *engine) refreshEvery(ctx context.Context, r refresher, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Refresh(ctx) // a failure shows on the next HMAC
		}
	}
}

// acquire marks a request using the engine; false once it is retired.
func (e *engine) acquire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.retired {
		return false
	}
	e.users++
	return true
}

func (e *engine) release() {
	e.mu.Lock()
	e.users--
	last := e.retired && e.users == 0
	e.mu.Unlock()
	if last {
		e.close()
	}
}

// retire stops new requests from using the engine; it closes once the
// requests in flight have released it.
func (e *engine) retire() {
	e.mu.Lock()
	already := e.retired
	e.retired = true
	last := !already && e.users == 0
	e.mu.Unlock()
	e.stop()
	if last {
		e.close()
	}
}

func (e *engine) close() {
	e.signer.Forget()
	_ = e.key.Close()
}

// tokenStatus is the engine's tokens' part of the config read.
func (e *engine) tokenStatus() map[string]any {
	out := map[string]any{}
	for _, w := range e.tokens {
		maps.Copy(out, w.status())
	}
	return out
}

// withEngine runs fn with the engine the stored config names, building it
// on first use; the engine stays open until fn returns.
func (b *backend) withEngine(ctx context.Context, s logical.Storage, fn func(*engine) error) error {
	e, err := b.acquireEngine(ctx, s, b.buildEngine)
	if err != nil {
		return err
	}
	defer e.release()
	return fn(e)
}

// engineLocked is withEngine's acquire for callers that hold configLock;
// they release the engine when done.
func (b *backend) engineLocked(ctx context.Context, s logical.Storage) (*engine, error) {
	return b.acquireEngine(ctx, s, b.buildEngineLocked)
}

// acquireEngine takes the installed engine, building one with build when
// there is none; an engine replaced meanwhile is skipped for the new one.
func (b *backend) acquireEngine(ctx context.Context, s logical.Storage, build func(context.Context, logical.Storage) error) (*engine, error) {
	for {
		if e := b.current.Load(); e != nil {
			if e.acquire() {
				return e, nil
			}
			continue
		}
		if err := build(ctx, s); err != nil {
			return nil, err
		}
	}
}

// buildEngine opens the configured key and installs its engine, unless
// another request did so first.
func (b *backend) buildEngine(ctx context.Context, s logical.Storage) error {
	b.configLock.Lock()
	defer b.configLock.Unlock()
	return b.buildEngineLocked(ctx, s)
}

func (b *backend) buildEngineLocked(ctx context.Context, s logical.Storage) error {
	if b.current.Load() != nil {
		return nil
	}
	gen := b.generation.Load()
	cfg, err := b.config(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil {
		return errNotConfigured
	}
	// The registration may have changed since the config was written.
	if err := b.allowed(cfg); err != nil {
		// The caller sees the store unavailable; the reason goes to the log.
		return &storeError{store: cfg.KeyStore, err: errors.New(err.Error())}
	}
	key, err := b.openStoreKey(ctx, cfg)
	if err != nil {
		return err
	}
	e, err := b.newEngine(cfg, key)
	if err != nil {
		return err
	}
	b.cacheLock.Lock()
	defer b.cacheLock.Unlock()
	if b.generation.Load() != gen {
		e.retire() // the config changed while we opened: build again
		return nil
	}
	b.current.Store(e)
	return nil
}

// allowed checks a stored config against the registration environment.
func (b *backend) allowed(cfg *pluginConfig) error {
	if err := cfg.store.validate(&b.env); err != nil {
		return err
	}
	_, err := b.env.check(cfg)
	return err
}

// install makes e the engine and retires the one it replaces; nil only
// retires.
func (b *backend) install(e *engine) {
	if old := b.current.Swap(e); old != nil {
		old.retire()
	}
}
