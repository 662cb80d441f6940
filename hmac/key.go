// Package hmac defines Key, an AWS access key whose secret lives in a key
// store that computes HMAC-SHA256 with it but never hands it back.
//
// SigV4 needs the secret only for its first step, kDate = HMAC("AWS4"+secret,
// date). A Key computes exactly that step; package sigv4 does the rest.
// The key stores live in the subpackages.
package hmac

import (
	"context"
)

// Key is an AWS access key whose secret lives in a key store.
type Key interface {
	AccessKeyID() string
	// HMAC returns HMAC-SHA256("AWS4"+secret, msg), computed inside the key store.
	HMAC(ctx context.Context, msg []byte) ([]byte, error)
}

// Identified is implemented by keys that can name the exact secret they
// hold. KeyIdentity must change whenever the secret behind the key changes
// (a new version, a re-import), even if the access key ID stays the same, so
// that caches of derived keys never serve a key derived from an old secret.
// It must not reveal anything about the secret.
type Identified interface {
	KeyIdentity() string
}
