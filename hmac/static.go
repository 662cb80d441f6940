package hmac

import (
	"context"
	stdhmac "crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// StaticKey is a Key whose secret is held in this process's memory.
//
// It exists for tests and development only: it keeps "AWS4"+secret in
// ordinary memory, which is exactly what the key stores avoid. Use one of
// the key stores in the subpackages for anything real.
type StaticKey struct {
	accessKeyID string
	k           []byte
	identity    string
}

// NewStaticKey returns a software Key for tests and development only; see
// StaticKey.
func NewStaticKey(accessKeyID, secretAccessKey string) Key {
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	return &StaticKey{
		accessKeyID: accessKeyID,
		k:           []byte("AWS4" + secretAccessKey),
		// Every instance gets its own identity: a new secret for the same
		// access key ID is a new StaticKey and must not share cached keys.
		identity: "static:" + accessKeyID + ":" + hex.EncodeToString(nonce[:]),
	}
}

// AccessKeyID returns the AWS access key ID.
func (k *StaticKey) AccessKeyID() string { return k.accessKeyID }

// KeyIdentity names this instance; see Key.
func (k *StaticKey) KeyIdentity() string { return k.identity }

// HMAC returns HMAC-SHA256("AWS4"+secret, msg).
func (k *StaticKey) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(k.k) <= len("AWS4") {
		return nil, errors.New("hmac: static key has an empty secret")
	}
	m := stdhmac.New(sha256.New, k.k)
	m.Write(msg)
	return m.Sum(nil), nil
}
