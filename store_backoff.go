package awshmac

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// A key store that refuses the plugin's credential (hmac.ErrAuth: a wrong
// PIN, a revoked token) is not asked again on every request: an HSM locks a
// PIN after a few wrong ones, and the same credential cannot do better. The
// next try waits authBackoffMin, doubling on each refusal up to
// authBackoffMax, less up to a fifth of jitter so that nodes do not ask in
// step. A successful config write starts afresh.
//
// A store that is merely down (network, device missing) is not backed off:
// asking costs it nothing, and the first request after it is back succeeds.
const (
	authBackoffMin = 5 * time.Second
	authBackoffMax = 5 * time.Minute
)

// storeAccess is how the backend reaches its key store.
type storeAccess struct {
	// open opens the configured key; nil is the store's own open. Tests
	// wrap the real store here to count what reaches it.
	open func(ctx context.Context, cfg *pluginConfig) (storeKey, error)
	gate storeGate
}

// storeGate remembers a store's refusals of the credential a config holds.
type storeGate struct {
	mu       sync.Mutex
	log      func() hclog.Logger
	now      func() time.Time // nil: time.Now
	cfg      *pluginConfig    // the config the refusals were met with
	failures int              // refusals in a row
	retryAt  time.Time        // no try before this
	since    time.Time        // the first refusal in the row
	cause    string           // the last refusal, as the store put it
	probing  bool             // one try past retryAt is under way
}

// authBackoffError answers a request in the back-off window: 503 naming
// the store, why, and when it is asked again. It names the credential's
// field, never its value.
type authBackoffError struct {
	store   string
	fields  []string
	retryAt time.Time
	wait    time.Duration
	cause   error // the refusal; nil for requests refused without a try
}

func (e *authBackoffError) Error() string {
	cred := "the plugin's credential"
	if len(e.fields) > 0 {
		cred += " (" + strings.Join(e.fields, ", ") + ")"
	}
	when := fmt.Sprintf("it is not asked again until %s (in %s)", e.retryAt.UTC().Format(time.RFC3339), e.wait.Round(time.Second))
	if e.wait <= 0 {
		when = "it is being asked again now"
	}
	return fmt.Sprintf("the %s key store refused %s; %s; a config write that gives the credential again retries at once", e.store, cred, when)
}

func (e *authBackoffError) Unwrap() error {
	if e.cause != nil {
		return e.cause
	}
	return hmac.ErrAuth
}

// isAuthBackoff reports a refusal the back-off answered (and logged once).
func isAuthBackoff(err error) bool {
	var b *authBackoffError
	return errors.As(err, &b)
}

// keyGate is the backend's gate, logging to its logger.
func (b *backend) keyGate() *storeGate {
	g := &b.stores.gate
	g.mu.Lock()
	if g.log == nil {
		g.log = b.Logger
	}
	g.mu.Unlock()
	return g
}

// openKey opens cfg's key through the test seam, if set.
func (b *backend) openKey(ctx context.Context, cfg *pluginConfig) (storeKey, error) {
	if b.stores.open != nil {
		return b.stores.open(ctx, cfg)
	}
	return cfg.store.open(ctx, cfg.AccessKey)
}

func (g *storeGate) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// enter asks whether cfg's store may be tried now. It may, unless it refused
// cfg's credential and the back-off has not passed, or another try past it
// is under way. done reports the try's outcome; a refusal it records comes
// back as the error to answer with.
func (g *storeGate) enter(cfg *pluginConfig) (done func(error) error, err error) {
	if g == nil {
		return func(err error) error { return err }, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	probe := false
	if g.cfg == cfg && g.failures > 0 {
		now := g.clock()
		if now.Before(g.retryAt) || g.probing {
			return nil, &storeError{store: cfg.KeyStore, err: g.refusalLocked(now, nil)}
		}
		g.probing, probe = true, true
	}
	return func(err error) error { return g.observe(cfg, probe, err) }, nil
}

// observe records a try's outcome: a refusal starts or extends the back-off
// (logged here, once per try), a success ends it.
func (g *storeGate) observe(cfg *pluginConfig, probe bool, err error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	switch {
	case err == nil:
		if g.cfg == cfg && g.failures > 0 {
			g.logger().Info("the key store accepts the plugin's credential again", "store", cfg.KeyStore, "refusals", g.failures)
			g.resetLocked()
		}
		return nil
	case !errors.Is(err, hmac.ErrAuth):
		return err // down, not refusing: nothing to back off from
	}
	now := g.clock()
	if g.cfg == cfg && g.failures > 0 && !probe && now.Before(g.retryAt) {
		// Tries that began before the refusal was known: counted once.
		return &storeError{store: cfg.KeyStore, err: g.refusalLocked(now, err)}
	}
	if g.cfg != cfg || g.failures == 0 {
		g.resetLocked()
		g.cfg, g.since = cfg, now
	}
	g.failures++
	g.retryAt = now.Add(backoffDelay(g.failures))
	g.cause = err.Error()
	refusal := g.refusalLocked(now, err)
	g.logger().Warn("the key store refused the plugin's credential; backing off", "store", cfg.KeyStore,
		"refusals", g.failures, "retry_at", refusal.retryAt.UTC().Format(time.RFC3339), "retry_in", refusal.wait.String(), "error", g.cause)
	return &storeError{store: cfg.KeyStore, err: refusal}
}

func (g *storeGate) refusalLocked(now time.Time, cause error) *authBackoffError {
	return &authBackoffError{store: g.cfg.KeyStore, fields: credentialFields(g.cfg.KeyStore),
		retryAt: g.retryAt, wait: g.retryAt.Sub(now), cause: cause}
}

func (g *storeGate) logger() hclog.Logger {
	if g.log == nil {
		return hclog.NewNullLogger()
	}
	return g.log()
}

// reset forgets every refusal: a config write gave the store a credential
// that works (or a new one to try).
func (g *storeGate) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resetLocked()
}

func (g *storeGate) resetLocked() {
	g.cfg, g.failures, g.retryAt, g.since, g.cause, g.probing = nil, 0, time.Time{}, time.Time{}, "", false
}

// status is the back-off's part of a config read: empty unless cfg's
// store is refusing its credential.
func (g *storeGate) status(cfg *pluginConfig) map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfg != cfg || g.failures == 0 {
		return nil
	}
	return map[string]any{
		"key_store_refused":       g.cause,
		"key_store_refused_since": formatTime(g.since),
		"key_store_refusals":      g.failures,
		"key_store_retry_at":      formatTime(g.retryAt),
	}
}

// backoffDelay is the wait after n refusals in a row.
func backoffDelay(n int) time.Duration {
	d := authBackoffMax
	if n < 20 {
		d = min(authBackoffMin<<(n-1), authBackoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// credentialFields names the write-only fields of a store: the credential
// a config write gives again.
func credentialFields(store string) []string {
	if k, ok := storeKinds[store]; ok {
		return k.writeOnly
	}
	return nil
}
