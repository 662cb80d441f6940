package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// maxBuffer is TPM2B_MAX_BUFFER in the reference profile: longer messages
// go through an HMAC sequence.
const maxBuffer = 1024

// Config locates the TPM and the key.
type Config struct {
	// Device is /dev/tpmrm0 (the default) or tcp://HOST:PORT for swtpm.
	Device string
	// Parent is a persistent parent handle; 0 creates the standard ECC P-256
	// storage root key under the owner hierarchy.
	Parent uint32
	// Password is the key's authorisation value; empty for none.
	Password string
	// PersistentHandle, when set, is where the key lives (Import puts it
	// there with EvictControl) instead of being loaded from Public/Private.
	PersistentHandle uint32
	// Public and Private are the key's blobs from Import; the private part is
	// wrapped by the parent and useless on another TPM.
	Public, Private []byte
	// ParentName pins the parent's name from Import; a TPM that presents a
	// different parent is refused.
	ParentName []byte
	// PCRs, when set, seal the key to these SHA-256 PCRs: it works only while
	// they hold the values they had at import (and with Password, if set).
	PCRs []uint
	// ParentKind, when set, names the parent by template instead of Parent
	// (ParentEKRSA, ParentEKECC, ParentEKECC384, ParentSRK): the parent a
	// duplicated key is imported under.
	ParentKind string
	// Blobs, when set, are the key wrapped to each enrolled TPM's parent
	// (tpm_mode=duplicate): Open imports the one for this TPM's parent.
	Blobs []Blob
	// Open opens the transport; nil uses Open(Device). Tests pass the simulator.
	Open func() (transport.TPMCloser, error)
}

var _ hmac.Key = (*Key)(nil)

// Key is an AWS access key whose secret is a keyed-hash object in a TPM.
type Key struct {
	accessKeyID string
	cfg         Config
	identity    string // from the public area or persistent handle; fixed once known

	// dupPolicy is the authPolicy a duplicated key's public area was
	// checked to hold before its import; duplicated says there was one.
	dupPolicy  []byte
	duplicated bool

	mu     sync.Mutex // one command sequence at a time on the transport
	conn   transport.TPMCloser
	closed bool
}

func (c *Config) open() (transport.TPMCloser, error) {
	if c.Open != nil {
		return c.Open()
	}
	return Dial(c.Device)
}

func hmacTemplate(policy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:    true,
			FixedParent: true,
			// With a PCR policy the password alone must not be enough.
			UserWithAuth: len(policy) == 0,
			SignEncrypt:  true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{
				Scheme:  tpm2.TPMAlgHMAC,
				Details: tpm2.NewTPMUSchemeKeyedHash(tpm2.TPMAlgHMAC, &tpm2.TPMSSchemeHMAC{HashAlg: tpm2.TPMAlgSHA256}),
			},
		}),
	}
}

// parent is a loaded parent key: its handle, name and public area (the
// salt key of the encrypted sessions) and how to release it.
type parent struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
	flush  func()
	// policy is set for an endorsement key: its user role needs
	// PolicySecret(TPM_RH_ENDORSEMENT), not a password.
	policy bool
}

// auth authorises the parent's user role for Create, Import and Load.
func (p *parent) auth() tpm2.Session {
	if !p.policy {
		return tpm2.PasswordAuth(nil)
	}
	return tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(t transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
			PolicySession: h,
		}.Execute(t)
		return err
	})
}

func (k *Key) loadParent() (*parent, error) {
	if k.cfg.ParentKind != "" {
		return k.primaryParent(k.cfg.ParentKind)
	}
	if k.cfg.Parent != 0 {
		h := tpm2.TPMHandle(k.cfg.Parent)
		rp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(k.conn)
		if err != nil {
			return nil, k.storeError("read parent", err)
		}
		pub, err := rp.OutPublic.Contents()
		if err != nil {
			return nil, k.storeError("read parent", err)
		}
		return &parent{handle: h, name: rp.Name, public: *pub, flush: func() {}}, nil
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("create storage root key", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		flush(k.conn, rsp.ObjectHandle)
		return nil, k.storeError("create storage root key", err)
	}
	conn, h := k.conn, rsp.ObjectHandle
	return &parent{handle: h, name: rsp.Name, public: *pub, flush: func() { flush(conn, h) }}, nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}

// session is a salted, parameter-encrypted HMAC session bound to the
// parent, so neither K on its way in nor an HMAC on its way out crosses the
// bus in clear.
func (k *Key) session(p *parent, dir int, auth []byte) tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(auth), encryption(dir), tpm2.Salted(p.handle, p.public))
}

// encryption encrypts the first command parameter (encryptIn) or the first
// response parameter (encryptOut) with AES-128 under the session.
func encryption(dir int) tpm2.AuthOption {
	if dir == encryptIn {
		return tpm2.AESEncryption(128, tpm2.EncryptIn)
	}
	return tpm2.AESEncryption(128, tpm2.EncryptOut)
}

// keySession authorises use of the key: an HMAC session with its password,
// or, for a PCR-sealed key, a policy session that checks the PCRs (and the
// password). Either is salted and encrypts in the given direction.
func (k *Key) keySession(p *parent, dir int) tpm2.Session {
	auth := []byte(k.cfg.Password)
	if len(k.cfg.PCRs) == 0 {
		return k.session(p, dir, auth)
	}
	return tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(t transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		return k.applyPolicy(t, h)
	}, tpm2.Auth(auth), encryption(dir), tpm2.Salted(p.handle, p.public))
}

// applyPolicy runs the key's policy commands in a policy session.
func (k *Key) applyPolicy(t transport.TPM, h tpm2.TPMISHPolicy) error {
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(k.cfg.PCRs...),
	}}}
	if _, err := (tpm2.PolicyPCR{PolicySession: h, Pcrs: sel}).Execute(t); err != nil {
		return err
	}
	if k.cfg.Password != "" {
		if _, err := (tpm2.PolicyAuthValue{PolicySession: h}).Execute(t); err != nil {
			return err
		}
	}
	return nil
}

// policyDigest computes the PCR policy in a trial session.
func (k *Key) policyDigest() ([]byte, error) {
	if len(k.cfg.PCRs) == 0 {
		return nil, nil
	}
	for _, pcr := range k.cfg.PCRs {
		if pcr > 23 {
			return nil, fmt.Errorf("tpm: PCR %d out of range 0-23", pcr)
		}
	}
	sess, closeSession, err := tpm2.PolicySession(k.conn, tpm2.TPMAlgSHA256, 16, tpm2.Trial())
	if err != nil {
		return nil, k.storeError("start trial policy", err)
	}
	defer closeSession()
	if err := k.applyPolicy(k.conn, sess.Handle()); err != nil {
		return nil, k.storeError("trial policy", err)
	}
	rsp, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("policy digest", err)
	}
	return rsp.PolicyDigest.Buffer, nil
}

const (
	encryptIn = iota
	encryptOut
)

// connect opens the transport if it is not open. Callers hold k.mu.
func (k *Key) connect() error {
	if k.conn != nil {
		return nil
	}
	conn, err := k.cfg.open()
	if err != nil {
		return err
	}
	k.conn = conn
	return nil
}

// connected runs fn holding the transport, connected for fn only.
func (k *Key) connected(fn func() error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errKeyClosed
	}
	if err := k.connect(); err != nil {
		return err
	}
	defer k.disconnect()
	return fn()
}

// disconnect closes the transport. Each operation connects anew: swtpm
// serves one client at a time, the kernel's resource manager flushes a
// closed client's handles, and a restarted TPM is simply reached again.
func (k *Key) disconnect() {
	if k.conn != nil {
		_ = k.conn.Close()
		k.conn = nil
	}
}

// Import creates K = "AWS4"+secret in the TPM under the parent, inside an
// encrypted session, and returns the key. Its Config then holds the blobs
// (or the persistent handle) and the parent's name: the reference to store.
func Import(ctx context.Context, cfg Config, accessKeyID, secret string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if accessKeyID == "" || secret == "" {
		return nil, errors.New("tpm: access key ID and secret are required")
	}
	value := []byte("AWS4" + secret)
	defer clear(value)
	if len(value) > 64 {
		return nil, errors.New("tpm: secret longer than 60 characters does not fit a SHA-256 HMAC key")
	}
	k := &Key{accessKeyID: accessKeyID, cfg: cfg}
	if err := k.connected(func() error { return k.create(value) }); err != nil {
		return nil, err
	}
	k.identity = identityOf(k.cfg)
	return k, nil
}

func (k *Key) create(value []byte) error {
	if k.cfg.PersistentHandle != 0 {
		if _, err := (tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(k.cfg.PersistentHandle)}).Execute(k.conn); err == nil {
			return fmt.Errorf("tpm: persistent handle 0x%x is already taken: %w", k.cfg.PersistentHandle, hmac.ErrKeyExists)
		}
	}
	policy, err := k.policyDigest()
	if err != nil {
		return err
	}
	p, err := k.loadParent()
	if err != nil {
		return err
	}
	defer p.flush()
	created, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.auth()},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: []byte(k.cfg.Password)},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: value}),
		}},
		InPublic: tpm2.New2B(hmacTemplate(policy)),
	}.Execute(k.conn, k.session(p, encryptIn, nil))
	if err != nil {
		return k.storeError("create key", err)
	}
	k.cfg.Public = tpm2.Marshal(created.OutPublic)
	k.cfg.Private = tpm2.Marshal(created.OutPrivate)
	k.cfg.ParentName = append([]byte(nil), p.name.Buffer...)
	if k.cfg.PersistentHandle == 0 {
		return nil
	}
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.auth()},
		InPrivate:    created.OutPrivate,
		InPublic:     created.OutPublic,
	}.Execute(k.conn)
	if err != nil {
		return k.storeError("load key", err)
	}
	defer flush(k.conn, loaded.ObjectHandle)
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     &tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name},
		PersistentHandle: tpm2.TPMHandle(k.cfg.PersistentHandle),
	}).Execute(k.conn); err != nil {
		return k.storeError("persist key", err)
	}
	return nil
}

// Open returns a key from its reference and checks that the TPM can use it.
func Open(ctx context.Context, cfg Config, accessKeyID string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if accessKeyID == "" {
		return nil, errors.New("tpm: no access key ID")
	}
	if len(cfg.Blobs) > 0 {
		return openDuplicate(cfg, accessKeyID)
	}
	if cfg.PersistentHandle == 0 && (len(cfg.Public) == 0 || len(cfg.Private) == 0) {
		return nil, errors.New("tpm: need the key's public and private blobs or a persistent handle")
	}
	k := &Key{accessKeyID: accessKeyID, cfg: cfg, identity: identityOf(cfg)}
	if err := k.connected(func() error { return k.withKey(func(tpm2.NamedHandle, *parent) error { return nil }) }); err != nil {
		return nil, err
	}
	return k, nil
}

// withKey loads the parent and the key, runs fn, and flushes what it loaded.
func (k *Key) withKey(fn func(tpm2.NamedHandle, *parent) error) error {
	p, err := k.loadParent()
	if err != nil {
		return err
	}
	defer p.flush()
	if len(k.cfg.ParentName) > 0 && !bytes.Equal(p.name.Buffer, k.cfg.ParentName) {
		return errors.New("tpm: the parent key's name differs from the one the key was imported under; refusing this TPM")
	}
	if k.cfg.PersistentHandle != 0 {
		h := tpm2.TPMHandle(k.cfg.PersistentHandle)
		rp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(k.conn)
		if err != nil {
			return k.storeError("read key", err)
		}
		return fn(tpm2.NamedHandle{Handle: h, Name: rp.Name}, p)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](k.cfg.Public)
	if err != nil {
		return fmt.Errorf("tpm: public blob: %w", err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](k.cfg.Private)
	if err != nil {
		return fmt.Errorf("tpm: private blob: %w", err)
	}
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.auth()},
		InPrivate:    *priv,
		InPublic:     *pub,
	}.Execute(k.conn)
	if err != nil {
		return k.storeError("load key", err)
	}
	defer flush(k.conn, loaded.ObjectHandle)
	return fn(tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name}, p)
}

// AccessKeyID returns the AWS access key ID.
func (k *Key) AccessKeyID() string { return k.accessKeyID }

// Reference returns the key's configuration to store: blobs, handles and
// the parent's name. None of it is secret, and none of it works on another TPM.
func (k *Key) Reference() Config {
	c := k.cfg
	c.Password, c.Open = "", nil
	return c
}

// KeyIdentity names the key by its public area; see hmac.Key.
func (k *Key) KeyIdentity() string { return k.identity }

func identityOf(cfg Config) string {
	if cfg.PersistentHandle != 0 {
		return fmt.Sprintf("tpm:%s:persistent:0x%x:%x", cfg.Device, cfg.PersistentHandle, cfg.ParentName)
	}
	return fmt.Sprintf("tpm:%s:%x", cfg.Device, cfg.Public)
}

// HMAC computes HMAC-SHA256 of msg in the TPM; the result comes back
// encrypted under the session.
func (k *Key) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var mac []byte
	err := k.connected(func() error {
		return k.withKey(func(h tpm2.NamedHandle, p *parent) error {
			var err error
			mac, err = k.compute(h, p, msg)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return mac, nil
}

// compute runs TPM2_HMAC, or a sequence for a message longer than one buffer.
func (k *Key) compute(h tpm2.NamedHandle, p *parent, msg []byte) ([]byte, error) {
	if len(msg) > maxBuffer {
		mac, err := k.sequence(h, p, msg)
		if err != nil {
			return nil, k.storeError("hmac", err)
		}
		return mac, nil
	}
	key := tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: k.keySession(p, encryptOut)}
	rsp, err := tpm2.Hmac{Handle: key, Buffer: tpm2.TPM2BMaxBuffer{Buffer: msg}, HashAlg: tpm2.TPMAlgSHA256}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("hmac", err)
	}
	return rsp.OutHMAC.Buffer, nil
}

// sequence HMACs a message longer than one buffer with HMAC_Start,
// SequenceUpdate and SequenceComplete, flushing the sequence on failure.
func (k *Key) sequence(h tpm2.NamedHandle, p *parent, msg []byte) ([]byte, error) {
	// A random auth value for the sequence, kept to printable bytes: the TPM
	// drops trailing zero bytes of auth values.
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, err
	}
	seqAuth := []byte(hex.EncodeToString(random[:]))
	// HMAC_Start's first parameter is the sequence's auth value: encrypt it on the way in.
	key := tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: k.keySession(p, encryptIn)}
	start, err := tpm2.HmacStart{Handle: key, Auth: tpm2.TPM2BAuth{Buffer: seqAuth}, HashAlg: tpm2.TPMAlgNull}.Execute(k.conn)
	if err != nil {
		return nil, err
	}
	seq := tpm2.AuthHandle{Handle: start.SequenceHandle, Auth: tpm2.PasswordAuth(seqAuth)}
	for len(msg) > maxBuffer {
		if _, err := (tpm2.SequenceUpdate{SequenceHandle: seq, Buffer: tpm2.TPM2BMaxBuffer{Buffer: msg[:maxBuffer]}}).Execute(k.conn); err != nil {
			flush(k.conn, start.SequenceHandle)
			return nil, err
		}
		msg = msg[maxBuffer:]
	}
	done, err := tpm2.SequenceComplete{
		SequenceHandle: tpm2.AuthHandle{Handle: start.SequenceHandle, Auth: k.session(p, encryptOut, seqAuth)},
		Buffer:         tpm2.TPM2BMaxBuffer{Buffer: msg},
		Hierarchy:      tpm2.TPMRHNull,
	}.Execute(k.conn)
	if err != nil {
		flush(k.conn, start.SequenceHandle)
		return nil, err
	}
	return done.Result.Buffer, nil
}

// Close closes the transport, after the command sequence in flight; HMACs
// after it fail.
func (k *Key) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	k.disconnect()
	return nil
}

var errKeyClosed = errors.New("tpm: key closed")

func (k *Key) storeError(op string, err error) error {
	where := k.cfg.Device
	if where == "" {
		where = "the TPM"
	}
	if isAuthFailure(err) {
		return fmt.Errorf("tpm: %s on %s: %w: %w", op, where, hmac.ErrAuth, err)
	}
	return fmt.Errorf("tpm: %s on %s: %w", op, where, err)
}

// isAuthFailure: the TPM refused the key's authorisation (a wrong password,
// or the dictionary-attack lockout that wrong passwords lead to).
func isAuthFailure(err error) bool {
	return errors.Is(err, tpm2.TPMRCAuthFail) || errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCLockout)
}
