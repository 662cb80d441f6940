package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"reflect"
	"sync"
	"sync/atomic"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// maxCachedKeys bounds the cache; past it, keys of other days are dropped.
const maxCachedKeys = 4096

// cacheKey names one derived signing key. identity carries the key's
// identity and version (hmac.Identified), so a new secret behind the same
// access key ID never meets a key derived from the old one; instance stands
// in for keys without one.
type cacheKey struct {
	identity string
	instance any
	date     string
	region   string
	service  string
}

// derivedKey is kSigning for one cacheKey. ready is closed once key or err
// is set, so concurrent signers of a new scope ask the key store only once.
type derivedKey struct {
	ready chan struct{}
	key   []byte
	err   error
}

// keyCache holds derived signing keys in memory only.
type keyCache struct {
	mu      sync.RWMutex
	entries map[cacheKey]*derivedKey
	calls   atomic.Uint64
}

func newKeyCache() *keyCache {
	return &keyCache{entries: make(map[cacheKey]*derivedKey)}
}

// cacheKeyFor names key's derived keys: by its KeyIdentity when it has one,
// else by the key value itself when comparable (a pointer); ok is false for
// a key that can be neither, whose derived keys are not cached.
func cacheKeyFor(key awshmac.Key, date, region, service string) (ck cacheKey, ok bool) {
	ck = cacheKey{date: date, region: region, service: service}
	if id, isIdentified := key.(awshmac.Identified); isIdentified {
		ck.identity = id.KeyIdentity()
		return ck, true
	}
	if t := reflect.TypeOf(key); t != nil && t.Comparable() {
		ck.instance = key
		return ck, true
	}
	return ck, false
}

// signingKey returns kSigning for the key, date, region and service, asking
// the key store for kDate only when that combination is new.
func (c *keyCache) signingKey(ctx context.Context, key awshmac.Key, date, region, service string) ([]byte, error) {
	ck, cacheable := cacheKeyFor(key, date, region, service)
	if !cacheable {
		return c.derive(ctx, key, date, region, service)
	}

	c.mu.RLock()
	e, ok := c.entries[ck]
	c.mu.RUnlock()
	if !ok {
		c.mu.Lock()
		if e, ok = c.entries[ck]; !ok {
			if len(c.entries) >= maxCachedKeys {
				c.evictOtherDays(date)
			}
			e = &derivedKey{ready: make(chan struct{})}
			c.entries[ck] = e
		}
		c.mu.Unlock()
		if !ok {
			e.key, e.err = c.derive(ctx, key, date, region, service)
			if e.err != nil {
				// Failures are not cached: the next call asks the store again.
				c.mu.Lock()
				if c.entries[ck] == e {
					delete(c.entries, ck)
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
	if e.err != nil {
		return nil, e.err
	}
	return e.key, nil
}

// derive computes kSigning; only the first step reaches the key store.
func (c *keyCache) derive(ctx context.Context, key awshmac.Key, date, region, service string) ([]byte, error) {
	c.calls.Add(1)
	kDate, err := key.HMAC(ctx, []byte(date))
	if err != nil {
		return nil, err
	}
	defer clear(kDate)
	if len(kDate) != sha256.Size {
		return nil, errKeyStoreOutput
	}
	kRegion := hmacSHA256(kDate, region)
	kService := hmacSHA256(kRegion, service)
	clear(kRegion)
	kSigning := hmacSHA256(kService, "aws4_request")
	clear(kService)
	return kSigning, nil
}

func (c *keyCache) evictOtherDays(date string) {
	for k := range c.entries {
		if k.date != date {
			delete(c.entries, k)
		}
	}
	if len(c.entries) >= maxCachedKeys {
		clear(c.entries)
	}
}

func (c *keyCache) purge() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
