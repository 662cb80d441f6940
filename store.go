package awshmac

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// storeKey is an opened key: it HMACs and releases its resources. Close is
// safe while HMACs are in flight.
type storeKey interface {
	hmac.Key
	Close() error
}

// storeParams is one key store's part of the config: its fields as stored
// (flat in the config's JSON, beside the common ones) and what it does
// with them. Each store_<name>.go file implements it and registers a
// storeKind; nothing else in the plugin names a store.
type storeParams interface {
	// parse copies the store's fields present in d.
	parse(d *framework.FieldData) error
	// applyDefaults fills what the store derives when left empty.
	applyDefaults(accessKey string)
	// validate checks the fields, with defaults applied, against what the
	// registration environment allows; it changes nothing.
	validate(env *operatorEnv) error
	// endpoints are the URL fields, by name, for the plain-http check.
	endpoints() map[string]string
	// insecureUses names the development-only settings in use.
	insecureUses() []string
	// data is the read-back: every field but the write-only ones.
	data() map[string]any
	// open opens the key its reference names.
	open(ctx context.Context, accessKey string) (storeKey, error)
	// importSecret imports secret as a new key and records its reference.
	importSecret(ctx context.Context, accessKey, secret string) (storeKey, error)
	// bindings names each write-only credential the store keeps and the
	// fields that decide where it is sent or what it unlocks: a write that
	// changes one of them must give the credential again.
	bindings() map[string][]string
	// vaultTokens are the Vault tokens the store holds, to keep alive.
	vaultTokens() []vaultToken
	// forRotation is a copy that imports a new object for newAccessKey,
	// beside the current one, reaching the store the same way.
	forRotation(newAccessKey string) (storeParams, error)
	// destroy removes the object the params name from the store.
	destroy(ctx context.Context, accessKey string) error
}

// vaultToken is a token a store uses, named by its config field.
type vaultToken struct {
	field  string
	client func() (*api.Client, error)
}

// storeKind is a key store as the plugin knows it.
type storeKind struct {
	name      string
	fields    map[string]*framework.FieldSchema
	writeOnly []string
	newParams func() storeParams
}

var storeKinds = map[string]*storeKind{}

// registerStore is called from each store file's init.
func registerStore(k *storeKind) {
	if _, dup := storeKinds[k.name]; dup {
		panic("key store registered twice: " + k.name)
	}
	for name := range k.fields {
		if !strings.HasPrefix(name, k.name+"_") {
			panic("key store field without its store's prefix: " + name)
		}
	}
	storeKinds[k.name] = k
}

// storeNames lists the stores, sorted, for help text and AllowedValues.
func storeNames() []string {
	return slices.Sorted(maps.Keys(storeKinds))
}

// storeFields is every store's schema, for the config path.
func storeFields() map[string]*framework.FieldSchema {
	out := map[string]*framework.FieldSchema{}
	for _, k := range storeKinds {
		maps.Copy(out, k.fields)
	}
	return out
}

// writeOnlyFields are accepted on write and never returned or logged.
// The registry is complete once the package is initialised.
var writeOnlyFields = sync.OnceValue(func() []string {
	out := []string{"secret_key"}
	for _, name := range storeNames() {
		out = append(out, storeKinds[name].writeOnly...)
	}
	return out
})

// openStoreKey opens the configured key for requests: not while the store
// is backing off from refusing cfg's credential (store_backoff.go). A
// failure is the store's.
func (b *backend) openStoreKey(ctx context.Context, cfg *pluginConfig) (storeKey, error) {
	gate := b.keyGate()
	done, err := gate.enter(cfg)
	if err != nil {
		return nil, err
	}
	k, err := b.openKey(ctx, cfg)
	if ctx.Err() != nil && err != nil {
		err = ctx.Err() // the caller left: no outcome to record
	}
	if err := done(err); err != nil {
		if isAuthBackoff(err) {
			return nil, err
		}
		return nil, &storeError{store: cfg.KeyStore, err: err}
	}
	return reportingKey{storeKey: k, store: cfg.KeyStore, gate: gate, cfg: cfg}, nil
}

// openConfiguredKey opens the key a config write names. The write is not
// held back by the back-off: it is how an operator gives a new credential.
func (b *backend) openConfiguredKey(ctx context.Context, cfg *pluginConfig) (storeKey, error) {
	k, err := b.openKey(ctx, cfg)
	if err != nil {
		return nil, &storeError{store: cfg.KeyStore, err: err}
	}
	return reportingKey{storeKey: k, store: cfg.KeyStore, gate: b.keyGate(), cfg: cfg}, nil
}

// importStoreKey imports secret into the configured store, recording its
// reference in cfg. A key already there is the caller's to resolve.
func (b *backend) importStoreKey(ctx context.Context, cfg *pluginConfig, secret string) (storeKey, error) {
	k, err := cfg.store.importSecret(ctx, cfg.AccessKey, secret)
	if errors.Is(err, hmac.ErrKeyExists) {
		return nil, badInput("secret_key: the %s key store already holds a key under this name; leave secret_key out to use it, or name another key", cfg.KeyStore)
	}
	if err != nil {
		return nil, &storeError{store: cfg.KeyStore, err: err}
	}
	return reportingKey{storeKey: k, store: cfg.KeyStore, gate: b.keyGate(), cfg: cfg}, nil
}

// reportingKey marks its store's HMAC failures as key-store errors, so
// that the paths answer them with a 503 naming the store, and keeps a store
// that refused the credential from being asked on every request.
type reportingKey struct {
	storeKey
	store string
	gate  *storeGate    // nil: no back-off
	cfg   *pluginConfig // the config whose credential the key uses
}

func (k reportingKey) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	done, err := k.gate.enter(k.cfg)
	if err != nil {
		return nil, err
	}
	mac, err := k.storeKey.HMAC(ctx, msg)
	if err != nil && ctx.Err() != nil {
		_ = done(ctx.Err()) // the caller left: no outcome to record
		return mac, err
	}
	if err = done(err); err != nil && !isAuthBackoff(err) {
		err = &storeError{store: k.store, err: err}
	}
	return mac, err
}

// Refresh rereads the key's version (transit), through the back-off: the
// periodic reread does not ask a store that refuses the credential.
func (k reportingKey) Refresh(ctx context.Context) error {
	r, ok := k.storeKey.(refresher)
	if !ok {
		return nil
	}
	done, err := k.gate.enter(k.cfg)
	if err != nil {
		return err
	}
	err = r.Refresh(ctx)
	if err != nil && ctx.Err() != nil {
		return done(ctx.Err())
	}
	return done(err)
}
