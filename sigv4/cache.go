package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"sync/atomic"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// Bounds of the caches; past them, keys of other days are dropped first.
const (
	maxCachedDays = 64
	maxCachedKeys = 4096
)

// dayKey names one kDate: the key's identity (which changes with its secret)
// and the UTC date.
type dayKey struct {
	identity string
	date     string
}

// scopeKey names one kSigning.
type scopeKey struct {
	dayKey
	region  string
	service string
}

// dateEntry is kDate for one dayKey. ready is closed once key or err is set,
// so concurrent signers of a new day ask the key store only once.
type dateEntry struct {
	ready chan struct{}
	key   []byte
	err   error
}

// keyCache holds derived keys in memory only. The key store is asked for
// kDate once per key and day; kRegion, kService and kSigning are derived
// from it here, so a caller inventing regions or services costs no
// key-store round trip.
type keyCache struct {
	mu      sync.RWMutex
	days    map[dayKey]*dateEntry
	signing map[scopeKey][]byte
	calls   atomic.Uint64
}

func newKeyCache() *keyCache {
	return &keyCache{days: make(map[dayKey]*dateEntry), signing: make(map[scopeKey][]byte)}
}

// signingKey returns kSigning for the key, date, region and service.
func (c *keyCache) signingKey(ctx context.Context, key awshmac.Key, date, region, service string) ([]byte, error) {
	sk := scopeKey{dayKey{key.KeyIdentity(), date}, region, service}
	c.mu.RLock()
	k, ok := c.signing[sk]
	c.mu.RUnlock()
	if ok {
		return k, nil
	}
	kDate, err := c.dateKey(ctx, key, sk.dayKey)
	if err != nil {
		return nil, err
	}
	kRegion := hmacSHA256(kDate, region)
	kService := hmacSHA256(kRegion, service)
	clear(kRegion)
	kSigning := hmacSHA256(kService, "aws4_request")
	clear(kService)

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, live := c.days[sk.dayKey]; !live {
		// Forgotten while we derived: do not bring it back.
		return kSigning, nil
	}
	if len(c.signing) >= maxCachedKeys {
		c.evictSigningLocked(date)
	}
	c.signing[sk] = kSigning
	return kSigning, nil
}

// dateKey returns kDate, asking the key store only when the key and day are new.
func (c *keyCache) dateKey(ctx context.Context, key awshmac.Key, dk dayKey) ([]byte, error) {
	c.mu.RLock()
	e, ok := c.days[dk]
	c.mu.RUnlock()
	if !ok {
		c.mu.Lock()
		if e, ok = c.days[dk]; !ok {
			if len(c.days) >= maxCachedDays {
				c.evictDaysLocked(dk.date)
			}
			e = &dateEntry{ready: make(chan struct{})}
			c.days[dk] = e
		}
		c.mu.Unlock()
		if !ok {
			e.key, e.err = c.derive(ctx, key, dk.date)
			if e.err != nil {
				// Failures are not cached: the next call asks the store again.
				c.mu.Lock()
				if c.days[dk] == e {
					delete(c.days, dk)
				}
				c.mu.Unlock()
			}
			close(e.ready)
			return e.key, e.err
		}
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.key, e.err
}

// derive asks the key store for kDate: the only step that needs the secret.
func (c *keyCache) derive(ctx context.Context, key awshmac.Key, date string) ([]byte, error) {
	c.calls.Add(1)
	kDate, err := key.HMAC(ctx, []byte(date))
	if err != nil {
		return nil, err
	}
	if len(kDate) != sha256.Size {
		clear(kDate)
		return nil, errKeyStoreOutput
	}
	return kDate, nil
}

func (c *keyCache) evictDaysLocked(date string) {
	for k := range c.days {
		if k.date != date {
			delete(c.days, k)
		}
	}
	if len(c.days) >= maxCachedDays {
		c.purgeLocked()
	}
}

func (c *keyCache) evictSigningLocked(date string) {
	for k := range c.signing {
		if k.date != date {
			delete(c.signing, k)
		}
	}
	if len(c.signing) >= maxCachedKeys {
		clear(c.signing)
	}
}

func (c *keyCache) purge() {
	c.mu.Lock()
	c.purgeLocked()
	c.mu.Unlock()
}

func (c *keyCache) purgeLocked() {
	// Dropped, not zeroed: a signer may still be deriving from them.
	clear(c.days)
	clear(c.signing)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
