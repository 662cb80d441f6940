package awshmac

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
)

// Each PIN a config write gives costs one login attempt on the token, and a
// real HSM locks its user PIN after a few wrong ones. Config writes skip the
// key store's back-off (a write must be able to give the right PIN at once),
// so PIN checks have a back-off of their own: after a refused PIN, no PIN is
// checked on that module's tokens until the window ends (pinCheckWaitMin,
// doubling on each refusal in a row up to pinCheckWaitMax); an accepted PIN
// ends it. The window covers the module, not one token: before the module
// is asked, a token named by its label cannot be told from the same token
// named by its serial, and one window per name would multiply the tries.
const (
	pinCheckWaitMin = 5 * time.Second
	pinCheckWaitMax = 5 * time.Minute
)

// checkPKCS11PIN asks the token, in a fresh process; tests wrap it to count
// the checks that reach a token.
var checkPKCS11PIN = pkcs11.CheckPIN

// pkcs11PINChecks is the process's one throttle: a token's wrong-PIN
// counter is shared by every mount of this process that uses it.
var pkcs11PINChecks = &pinCheckThrottle{}

// pinCheckThrottle holds the refusals in a row of each module.
type pinCheckThrottle struct {
	mu       sync.Mutex
	now      func() time.Time // nil: time.Now
	byModule map[string]*pinCheckState
}

type pinCheckState struct {
	failures int       // refused PINs in a row
	retryAt  time.Time // no check before this
	busy     bool      // a check is under way
}

func (th *pinCheckThrottle) clock() time.Time {
	if th.now != nil {
		return th.now()
	}
	return time.Now()
}

// check asks the token whether cfg.PIN is its user PIN, unless the module
// is in its window or another check of it is under way: then a 400 naming
// pkcs11_pin, and the token is not touched.
func (th *pinCheckThrottle) check(ctx context.Context, cfg pkcs11.Config) error {
	module := filepath.Clean(cfg.Module)
	if err := th.begin(module); err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished { // a panic must not leave the module's checks held back for good
			th.end(module, errors.New("pkcs11: the PIN check did not finish"))
		}
	}()
	err := checkPKCS11PIN(ctx, cfg)
	finished = true
	retryAt := th.end(module, err)
	if errors.Is(err, hmac.ErrAuth) {
		return &pinRefusedError{err: err, retryAt: retryAt}
	}
	return err
}

func (th *pinCheckThrottle) begin(module string) error {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.byModule == nil {
		th.byModule = map[string]*pinCheckState{}
	}
	st := th.byModule[module]
	if st == nil {
		st = &pinCheckState{}
		th.byModule[module] = st
	}
	now := th.clock()
	switch {
	case st.busy:
		return badInput("pkcs11_pin: not checked: another PIN check on this pkcs11_module is under way; give the PIN again once it has answered")
	case now.Before(st.retryAt):
		return badInput("pkcs11_pin: not checked: the token refused the last PIN given (%d in a row), and each costs a login attempt that can lock the PIN; the next PIN check on this pkcs11_module is allowed at %s (in %s)",
			st.failures, st.retryAt.UTC().Format(time.RFC3339), st.retryAt.Sub(now).Round(time.Second))
	}
	st.busy = true
	return nil
}

// end records the check's outcome; it returns when the next check is
// allowed.
func (th *pinCheckThrottle) end(module string, err error) time.Time {
	th.mu.Lock()
	defer th.mu.Unlock()
	st := th.byModule[module]
	st.busy = false
	switch {
	case err == nil:
		delete(th.byModule, module)
		return time.Time{}
	case errors.Is(err, hmac.ErrAuth):
		st.failures++
		wait := pinCheckWaitMax
		if st.failures < 8 && pinCheckWaitMin<<(st.failures-1) < wait {
			wait = pinCheckWaitMin << (st.failures - 1)
		}
		st.retryAt = th.clock().Add(wait)
	case st.failures == 0:
		delete(th.byModule, module) // not an answer about the PIN: nothing to remember
	}
	return st.retryAt
}

// pinRefusedError: the token refused the PIN; it says when the next check
// is allowed. It is a 400 naming pkcs11_pin.
type pinRefusedError struct {
	err     error
	retryAt time.Time
}

func (e *pinRefusedError) Error() string {
	return "pkcs11_pin: " + e.err.Error() + "; the next PIN check on this pkcs11_module is allowed at " + e.retryAt.UTC().Format(time.RFC3339)
}

func (e *pinRefusedError) Unwrap() error { return e.err }
