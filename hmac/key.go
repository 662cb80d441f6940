// Package hmac defines Key, an AWS access key whose secret lives in a key
// store that computes HMAC-SHA256 with it but never hands it back.
//
// SigV4 needs the secret only for its first step, kDate = HMAC("AWS4"+secret,
// date). A Key computes exactly that step; package sigv4 does the rest.
// The key stores live in the subpackages.
package hmac

import (
	"context"
	"errors"
)

// Key is an AWS access key whose secret lives in a key store.
type Key interface {
	AccessKeyID() string
	// HMAC returns HMAC-SHA256("AWS4"+secret, msg), computed inside the key store.
	HMAC(ctx context.Context, msg []byte) ([]byte, error)
	// KeyIdentity names the secret (store, object, version). It changes
	// whenever the secret behind the key does, even under the same access key
	// ID, so no cache ever serves a key derived from an old secret. It reveals
	// nothing about the secret.
	KeyIdentity() string
}

// ErrKeyExists is wrapped by every store's Import when the object it would
// create is already there: imports never overwrite or shadow a key.
var ErrKeyExists = errors.New("the key store already holds a key under that name")

// ErrAuth is wrapped by every store when the store refused the credential the
// plugin presented (a wrong PIN, key password or token). Asking again with the
// same credential cannot succeed and may lock it (HSMs count PIN failures), so
// callers back off instead of retrying on every request.
var ErrAuth = errors.New("the key store refused the plugin's credential")
