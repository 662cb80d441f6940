// Package pkcs11 keeps an AWS secret in a PKCS#11 token (an HSM; SoftHSM2
// in tests) as a sensitive, non-extractable generic secret key and computes
// CKM_SHA256_HMAC with it.
//
// Sessions follow the usual pattern: the module is initialised once per
// process, one logged-in session stays open for the life of the Key, and a
// bounded pool of sessions serves C_Sign. A session the token reports as
// broken is replaced; after a token outage the next call logs in again and
// finds the key again.
package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

var errKeyClosed = errors.New("pkcs11: key closed")

// DefaultMaxSessions bounds the sessions one Key opens for signing.
const DefaultMaxSessions = 8

// Config locates the token and the key.
type Config struct {
	Module      string // path of the PKCS#11 library
	TokenLabel  string // the token is found by label...
	TokenSerial string // ...and/or serial number; never by slot position
	PIN         string // user PIN
	KeyLabel    string // CKA_LABEL of the key
	KeyID       []byte // CKA_ID of the key; Import makes a random one when empty
	MaxSessions int    // default DefaultMaxSessions
}

func (c *Config) validate() error {
	switch {
	case c.Module == "":
		return errors.New("pkcs11: no module (library path)")
	case c.TokenLabel == "" && c.TokenSerial == "":
		return errors.New("pkcs11: no token label or serial")
	case c.KeyLabel == "" && len(c.KeyID) == 0:
		return errors.New("pkcs11: no key label or id")
	}
	return nil
}

// Key is an AWS access key whose secret is a key in a PKCS#11 token.
type Key struct {
	accessKeyID string
	cfg         Config
	lib         *library
	slot        uint
	serial      string

	mu        sync.RWMutex // guards the fields below; writers reset the state
	login     pkcs11.SessionHandle
	loggedIn  bool
	handle    pkcs11.ObjectHandle
	keyID     []byte
	identity  string // module, token serial, label and id; set when the key is found
	pool      chan pkcs11.SessionHandle
	open      int // sessions in or out of the pool
	closed    bool
	available chan struct{} // signalled when a pooled session is returned or dropped
	// busy counts sessions out of the pool: Close waits for them before it
	// releases the module, or a signature in flight would call into a
	// finalised library.
	busy sync.WaitGroup
}

var _ hmac.Key = (*Key)(nil)

// Open finds an existing key, imported by Import or by the token's own tools.
// Loading the module and logging in are not cancellable: ctx is checked first.
func Open(ctx context.Context, cfg Config, accessKeyID string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, err := newKey(cfg, accessKeyID)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	err = k.connectLocked()
	k.mu.Unlock()
	if err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func newKey(cfg Config, accessKeyID string) (*Key, error) {
	if accessKeyID == "" {
		return nil, errors.New("pkcs11: no access key ID")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	lib, err := loadLibrary(cfg.Module)
	if err != nil {
		return nil, err
	}
	k := &Key{accessKeyID: accessKeyID, cfg: cfg, lib: lib,
		pool: make(chan pkcs11.SessionHandle, cfg.MaxSessions), available: make(chan struct{}, 1)}
	if err := k.findSlot(); err != nil {
		lib.release()
		return nil, err
	}
	return k, nil
}

// findSlot finds the token by label or serial: slot numbers change.
func (k *Key) findSlot() error {
	slots, err := k.lib.ctx.GetSlotList(true)
	if err != nil {
		return k.storeError("list slots", err)
	}
	var found []uint
	for _, s := range slots {
		info, err := k.lib.ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		label, serial := strings.TrimSpace(info.Label), strings.TrimSpace(info.SerialNumber)
		if (k.cfg.TokenLabel == "" || label == k.cfg.TokenLabel) && (k.cfg.TokenSerial == "" || serial == k.cfg.TokenSerial) {
			found = append(found, s)
			k.serial = serial
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("pkcs11: no token with label %q serial %q in %s%s", k.cfg.TokenLabel, k.cfg.TokenSerial, k.cfg.Module, configHint(k.cfg.Module))
	case 1:
		k.slot = found[0]
		return nil
	default:
		return fmt.Errorf("pkcs11: %d tokens match label %q; give the serial too", len(found), k.cfg.TokenLabel)
	}
}

// loginLocked opens the read-write session that stays logged in for the
// life of the Key. A token another Key of this process already logged into
// answers CKR_USER_ALREADY_LOGGED_IN, which is success.
func (k *Key) loginLocked() error {
	s, err := k.lib.ctx.OpenSession(k.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return k.storeError("open session", err)
	}
	if err := k.lib.ctx.Login(s, pkcs11.CKU_USER, k.cfg.PIN); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = k.lib.ctx.CloseSession(s)
		if why, ok := pinRefusals[codeOf(err)]; ok {
			return fmt.Errorf("pkcs11: login to token %q: %s (%v): %w", k.cfg.TokenLabel, why, err, hmac.ErrAuth)
		}
		return k.storeError("login", err)
	}
	k.login, k.loggedIn = s, true
	return nil
}

// pinRefusals are the C_Login answers that mean the token refused the PIN
// itself: asking again with the same PIN cannot succeed and counts towards
// the token's lockout, so they wrap hmac.ErrAuth and are never retried here.
var pinRefusals = map[uint]string{
	pkcs11.CKR_PIN_INCORRECT:            "wrong PIN",
	pkcs11.CKR_PIN_LEN_RANGE:            "wrong PIN (not a length the token accepts)",
	pkcs11.CKR_PIN_INVALID:              "wrong PIN (characters the token does not accept)",
	pkcs11.CKR_PIN_LOCKED:               "the user PIN is locked (too many wrong PINs); the token's security officer must unlock it",
	pkcs11.CKR_PIN_EXPIRED:              "the user PIN has expired; set a new one with the token's tools",
	pkcs11.CKR_USER_PIN_NOT_INITIALIZED: "the token's user PIN is not initialised",
}

func codeOf(err error) uint {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e)
	}
	return 0
}

// connectLocked opens the logged-in session and finds the key.
func (k *Key) connectLocked() error {
	if k.closed {
		return errKeyClosed
	}
	if err := k.loginLocked(); err != nil {
		return err
	}
	h, id, err := k.findKey(k.login)
	if err != nil {
		return err
	}
	k.setKeyLocked(h, id)
	return nil
}

func (k *Key) template() []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)}
	if k.cfg.KeyLabel != "" {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.cfg.KeyLabel))
	}
	if len(k.cfg.KeyID) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, k.cfg.KeyID))
	}
	return t
}

// findObjects returns up to two matches, so duplicates show.
func (k *Key) findObjects(s pkcs11.SessionHandle) ([]pkcs11.ObjectHandle, error) {
	if err := k.lib.ctx.FindObjectsInit(s, k.template()); err != nil {
		return nil, k.storeError("find key", err)
	}
	objs, _, err := k.lib.ctx.FindObjects(s, 2)
	_ = k.lib.ctx.FindObjectsFinal(s)
	if err != nil {
		return nil, k.storeError("find key", err)
	}
	return objs, nil
}

func (k *Key) findKey(s pkcs11.SessionHandle) (pkcs11.ObjectHandle, []byte, error) {
	objs, err := k.findObjects(s)
	if err != nil {
		return 0, nil, err
	}
	switch len(objs) {
	case 0:
		return 0, nil, fmt.Errorf("pkcs11: key %s not found on token %q", k.describe(), k.cfg.TokenLabel)
	case 1:
	default:
		return 0, nil, fmt.Errorf("pkcs11: more than one key matches %s on token %q; give a unique label and id", k.describe(), k.cfg.TokenLabel)
	}
	attrs, err := k.lib.ctx.GetAttributeValue(s, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
	if err != nil {
		return 0, nil, k.storeError("read key id", err)
	}
	return objs[0], attrs[0].Value, nil
}

func (k *Key) describe() string {
	var parts []string
	if k.cfg.KeyLabel != "" {
		parts = append(parts, fmt.Sprintf("label %q", k.cfg.KeyLabel))
	}
	if len(k.cfg.KeyID) > 0 {
		parts = append(parts, "id "+hex.EncodeToString(k.cfg.KeyID))
	}
	return strings.Join(parts, " ")
}

// AccessKeyID returns the AWS access key ID.
func (k *Key) AccessKeyID() string { return k.accessKeyID }

// KeyID is the key's CKA_ID, to store with its label as the reference.
func (k *Key) KeyID() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append([]byte(nil), k.keyID...)
}

// Reference is what locates the key on its token again: the token and the
// key's label and id. It holds no PIN.
func (k *Key) Reference() Config {
	c := k.cfg
	c.PIN = ""
	c.KeyID = k.KeyID()
	return c
}

// KeyIdentity names module, token, and key; see hmac.Key. Replacing
// the key under the same label and id requires deleting it first, which the
// plugin treats as a configuration change.
func (k *Key) KeyIdentity() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.identity
}

func (k *Key) setKeyLocked(h pkcs11.ObjectHandle, id []byte) {
	k.handle, k.keyID = h, id
	k.identity = "pkcs11:" + k.cfg.Module + ":" + k.serial + ":" + k.cfg.KeyLabel + ":" + hex.EncodeToString(id)
}

// HMAC computes CKM_SHA256_HMAC of msg inside the token.
func (k *Key) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	mac, err := k.sign(ctx, msg)
	if err == nil || ctx.Err() != nil {
		return mac, err
	}
	// The token may have gone away and come back: start over once. A
	// refused PIN is not asked again: tokens lock it after a few tries.
	if errors.Is(err, hmac.ErrAuth) {
		return nil, err
	}
	if rerr := k.reset(); rerr != nil {
		return nil, err
	}
	return k.sign(ctx, msg)
}

func (k *Key) sign(ctx context.Context, msg []byte) ([]byte, error) {
	s, handle, err := k.acquire(ctx)
	if err != nil {
		return nil, err
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}
	if err := k.lib.ctx.SignInit(s, mech, handle); err != nil {
		k.discard(s)
		return nil, k.storeError("sign", err)
	}
	mac, err := k.lib.ctx.Sign(s, msg)
	if err != nil {
		// A failed Sign can leave the operation active: drop the session.
		k.discard(s)
		return nil, k.storeError("sign", err)
	}
	k.release(s)
	return mac, nil
}

// acquire takes a pooled session, opens one while under the bound, or waits.
func (k *Key) acquire(ctx context.Context) (pkcs11.SessionHandle, pkcs11.ObjectHandle, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		k.mu.Lock()
		if k.closed {
			k.mu.Unlock()
			return 0, 0, errKeyClosed
		}
		if !k.loggedIn {
			if err := k.connectLocked(); err != nil {
				k.mu.Unlock()
				if errors.Is(err, hmac.ErrAuth) {
					return 0, 0, err // another login now would count as one more wrong PIN
				}
				if rerr := k.reset(); rerr != nil {
					return 0, 0, err
				}
				continue
			}
		}
		handle := k.handle
		select {
		case s := <-k.pool:
			k.busy.Add(1)
			k.mu.Unlock()
			return s, handle, nil
		default:
		}
		if k.open < k.cfg.MaxSessions {
			s, err := k.lib.ctx.OpenSession(k.slot, pkcs11.CKF_SERIAL_SESSION)
			if err != nil {
				k.mu.Unlock()
				return 0, 0, k.storeError("open session", err)
			}
			k.open++
			k.busy.Add(1)
			k.mu.Unlock()
			return s, handle, nil
		}
		k.mu.Unlock()
		select {
		case <-k.available:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

func (k *Key) release(s pkcs11.SessionHandle) {
	defer k.busy.Done()
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		_ = k.lib.ctx.CloseSession(s)
		return
	}
	k.pool <- s
	k.mu.Unlock()
	k.signal()
}

func (k *Key) discard(s pkcs11.SessionHandle) {
	defer k.busy.Done()
	_ = k.lib.ctx.CloseSession(s)
	k.mu.Lock()
	k.open--
	k.mu.Unlock()
	k.signal()
}

func (k *Key) signal() {
	select {
	case k.available <- struct{}{}:
	default:
	}
}

// reset closes every session, logs in and finds the key again; if the token
// still cannot be reached, it reinitialises the module and finds the token's
// slot anew.
func (k *Key) reset() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errKeyClosed
	}
	k.closeSessionsLocked()
	if err := k.connectLocked(); err == nil || errors.Is(err, hmac.ErrAuth) {
		return err
	}
	k.open = 0 // sessions end with the module
	if err := k.lib.reinitialize(); err != nil {
		return err
	}
	if err := k.findSlot(); err != nil {
		return err
	}
	return k.connectLocked()
}

func (k *Key) closeSessionsLocked() {
	for {
		select {
		case s := <-k.pool:
			_ = k.lib.ctx.CloseSession(s)
			k.open--
			continue
		default:
		}
		break
	}
	if k.loggedIn {
		_ = k.lib.ctx.CloseSession(k.login)
		k.loggedIn = false
	}
}

// Close closes the key's sessions and releases the module.
func (k *Key) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closeSessionsLocked()
	k.closed = true
	k.mu.Unlock()
	k.busy.Wait() // signatures in flight end before the module does
	k.lib.release()
	return nil
}

// OpenSessions counts the sessions the key holds (pooled, in use and the
// logged-in one), for tests that look for leaks.
func (k *Key) OpenSessions() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	n := k.open
	if k.loggedIn {
		n++
	}
	return n
}

// storeError reports a token failure by its PKCS#11 code, without input.
func (k *Key) storeError(op string, err error) error {
	return fmt.Errorf("pkcs11: %s on token %q: %w", op, k.cfg.TokenLabel, err)
}

// Import creates the key on the token: CKO_SECRET_KEY, CKK_GENERIC_SECRET,
// CKA_SIGN only, sensitive, not extractable, a token object, holding
// K = "AWS4"+secret. It refuses if a key with the label or id exists.
func Import(ctx context.Context, cfg Config, accessKeyID, secret string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("pkcs11: no secret")
	}
	if len(cfg.KeyID) == 0 {
		cfg.KeyID = make([]byte, 16)
		if _, err := rand.Read(cfg.KeyID); err != nil {
			return nil, err
		}
	}
	k, err := newKey(cfg, accessKeyID)
	if err != nil {
		return nil, err
	}
	if err := k.create(secret); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (k *Key) create(secret string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.loginLocked(); err != nil {
		return err
	}
	s := k.login
	// Refuse to shadow: any key with this label, or this id, is a conflict.
	for _, probe := range []Config{{KeyLabel: k.cfg.KeyLabel}, {KeyID: k.cfg.KeyID}} {
		if probe.KeyLabel == "" && len(probe.KeyID) == 0 {
			continue
		}
		p := &Key{lib: k.lib, cfg: probe}
		objs, err := p.findObjects(s)
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			return fmt.Errorf("pkcs11: a key with %s already exists on token %q; delete it or choose another: %w", p.describe(), k.cfg.TokenLabel, hmac.ErrKeyExists)
		}
	}
	value := []byte("AWS4" + secret)
	defer clear(value)
	template := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, k.cfg.KeyID),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
	}
	if k.cfg.KeyLabel != "" {
		template = append(template, pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.cfg.KeyLabel))
	}
	h, err := k.lib.ctx.CreateObject(s, template)
	if err != nil {
		return k.storeError("create key", err)
	}
	k.setKeyLocked(h, append([]byte(nil), k.cfg.KeyID...))
	return nil
}

// Destroy removes the key from the token (C_DestroyObject) and closes the
// Key: for an old key a rotation has replaced. The token needs the user
// PIN's rights to destroy objects.
func (k *Key) Destroy() error {
	k.mu.Lock()
	err := k.connectLocked()
	if err == nil {
		err = k.lib.ctx.DestroyObject(k.login, k.handle)
		if err != nil {
			err = k.storeError("destroy key", err)
		}
	}
	k.mu.Unlock()
	_ = k.Close()
	return err
}
