package awshmac

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
)

// tokenWatch keeps one Vault token a key store uses alive: it renews the
// token at half its TTL and reports, in the config read and the server
// log, a token that cannot be renewed before it expires.
type tokenWatch struct {
	field  string
	logger hclog.Logger

	mu        sync.Mutex
	known     bool
	expires   time.Time // zero: the token does not expire
	renewable bool
	problem   string
}

// Retry delays after a failed lookup or renewal; short enough to beat a
// short TTL, long enough not to hammer a Vault that is down.
const (
	tokenRetryMin = time.Second
	tokenRetryMax = 30 * time.Second
)

func (w *tokenWatch) run(ctx context.Context, client *api.Client) {
	retry := tokenRetryMin
	for {
		wait, err := w.step(ctx, client)
		if err != nil {
			w.report(fmt.Sprintf("cannot look up or renew: %v", err), true)
			wait, retry = retry, min(2*retry, tokenRetryMax)
		} else {
			retry = tokenRetryMin
		}
		if wait < 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// step looks the token up and renews it when half its TTL has passed. It
// returns how long to wait before the next step; negative: nothing more to do.
func (w *tokenWatch) step(ctx context.Context, client *api.Client) (time.Duration, error) {
	s, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return 0, err
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return 0, err
	}
	renewable, _ := s.TokenIsRenewable()
	w.record(ttl, renewable)
	switch {
	case ttl == 0:
		return -1, nil // a token without expiry needs no care
	case !renewable:
		w.report(fmt.Sprintf("is not renewable and expires at %s", time.Now().Add(ttl).UTC().Format(time.RFC3339)), true)
		return ttl, nil
	}
	creation, _ := s.Data["creation_ttl"].(interface{ Int64() (int64, error) })
	if err := w.renew(ctx, client, ttl, creation); err != nil {
		return 0, err
	}
	return max(ttl/2, tokenRetryMin), nil
}

// renew renews the token once it is past half its creation TTL, and notes
// when renewal no longer extends it (its max TTL is near).
func (w *tokenWatch) renew(ctx context.Context, client *api.Client, ttl time.Duration, creation interface{ Int64() (int64, error) }) error {
	var full time.Duration
	if creation != nil {
		if n, err := creation.Int64(); err == nil {
			full = time.Duration(n) * time.Second
		}
	}
	if full > 0 && ttl > full/2 {
		return nil
	}
	s, err := client.Auth().Token().RenewSelfWithContext(ctx, int(full/time.Second))
	if err != nil {
		return err
	}
	if s.Auth == nil {
		return fmt.Errorf("renewal answered without auth")
	}
	got := time.Duration(s.Auth.LeaseDuration) * time.Second
	w.record(got, s.Auth.Renewable)
	if full > 0 && got < full {
		w.report(fmt.Sprintf("reaches its max TTL and expires at %s", time.Now().Add(got).UTC().Format(time.RFC3339)), true)
	} else {
		w.report("", false)
	}
	return nil
}

func (w *tokenWatch) record(ttl time.Duration, renewable bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.known, w.renewable = true, renewable
	w.expires = time.Time{}
	if ttl > 0 {
		w.expires = time.Now().Add(ttl)
	}
}

// report sets the token's problem; a new one goes to the server log.
func (w *tokenWatch) report(problem string, warn bool) {
	w.mu.Lock()
	changed := problem != w.problem
	w.problem = problem
	w.mu.Unlock()
	if warn && changed && w.logger != nil {
		w.logger.Warn("key store token "+problem, "field", w.field)
	}
}

// status is the token's part of the config read.
func (w *tokenWatch) status() map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]any{w.field + "_warning": w.problem}
	if !w.known {
		return out
	}
	out[w.field+"_renewable"] = w.renewable
	out[w.field+"_ttl"] = int64(0)
	if !w.expires.IsZero() {
		out[w.field+"_ttl"] = max(int64(time.Until(w.expires)/time.Second), 0)
	}
	return out
}
