package awshmac

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Attestation: evidence, per key store, that the key cannot leave it
// (config/attestation), and a periodic check on the active node that the
// properties behind it still hold.

// storeAttester is a key store that can say what keeps its key in. Each
// store_<name>.go implements it with one method.
type storeAttester interface {
	// attest gathers the evidence about key, the engine's opened key (nil
	// when none could be opened: a store that needs it returns
	// errNoOpenKey). With r.check, only the exposures are needed.
	attest(ctx context.Context, key storeKey, r attestRequest) (*keyAttestation, error)
}

// attestRequest is what the caller asks of the store.
type attestRequest struct {
	nonce    []byte
	check    bool // the periodic check: exposures only, no certification
	activate *credentialActivation
}

// credentialActivation is a credential a verifier made for the TPM's
// attestation key with TPM2_MakeCredential against an endorsement key.
type credentialActivation struct {
	ek                string
	idObject, encSeed []byte
}

// keyAttestation is one store's answer.
type keyAttestation struct {
	statement string         // plain words: what the evidence shows, and what it does not
	evidence  map[string]any // what a verifier checks
	exposures []string       // properties that let the key leave, now
	activated bool           // a credential activation was done (its result is in evidence)
}

var errNoOpenKey = errors.New("the key is not open")

// baseKey is the store's own key under the engine's wrapper.
func baseKey(k storeKey) storeKey {
	if rk, ok := k.(reportingKey); ok {
		return rk.storeKey
	}
	return k
}

// attestKey asks the configured store for its evidence, with the engine's
// key, and returns the config it attested. When no key can be opened, a
// store that attests without one (transit reads its key's flags) still
// answers; the others give the engine's error. A store failing is a
// storeError (503).
func (b *backend) attestKey(ctx context.Context, s logical.Storage, r attestRequest) (*keyAttestation, *pluginConfig, error) {
	var att *keyAttestation
	var used *pluginConfig
	err := b.withEngine(ctx, s, func(e *engine) error {
		used = e.cfg
		var err error
		att, err = attestWith(ctx, e.cfg, baseKey(e.key), r)
		return err
	})
	if used != nil || errors.Is(err, errNotConfigured) {
		return att, used, err
	}
	cfg, cerr := b.config(ctx, s)
	if cerr != nil || cfg == nil {
		return nil, nil, err
	}
	// The registration may no longer allow where the stored config goes.
	if aerr := b.allowed(cfg); aerr != nil {
		return nil, nil, &storeError{store: cfg.KeyStore, err: errors.New(aerr.Error())}
	}
	att, kerr := attestWith(ctx, cfg, nil, r)
	if errors.Is(kerr, errNoOpenKey) {
		return nil, nil, err
	}
	return att, cfg, kerr
}

func attestWith(ctx context.Context, cfg *pluginConfig, key storeKey, r attestRequest) (*keyAttestation, error) {
	attester, ok := cfg.store.(storeAttester)
	if !ok {
		return &keyAttestation{statement: "The " + cfg.KeyStore + " key store gives no evidence about its key.", evidence: map[string]any{}}, nil
	}
	att, err := attester.attest(ctx, key, r)
	var bad *badInputError
	if err == nil || errors.As(err, &bad) || errors.Is(err, errNoOpenKey) {
		return att, err
	}
	return nil, &storeError{store: cfg.KeyStore, err: err}
}

// maxNonce is TPM2_Certify's limit (TPM2B_DATA holds a digest, at most
// SHA-512's 64 bytes); minNonce keeps a nonce from being guessable.
const (
	minNonce = 8
	maxNonce = 64
)

// parseNonce reads the nonce field: hex when it is only hex digits, base64
// otherwise.
func parseNonce(d *framework.FieldData) ([]byte, error) {
	raw := strings.TrimSpace(d.Get("nonce").(string))
	if raw == "" {
		return nil, nil
	}
	var n []byte
	var err error
	if hexRe.MatchString(raw) {
		n, err = hex.DecodeString(raw)
	} else if n, err = base64.StdEncoding.DecodeString(raw); err != nil {
		n, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
	}
	if err != nil {
		return nil, badInput("nonce must be hex or base64")
	}
	if len(n) < minNonce || len(n) > maxNonce {
		return nil, badInput("nonce must be %d to %d bytes (it is %d)", minNonce, maxNonce, len(n))
	}
	return n, nil
}

// parseActivation reads the credential activation fields; nil when none
// is given.
func parseActivation(d *framework.FieldData) (*credentialActivation, error) {
	blob, seed := strings.TrimSpace(d.Get("credential_blob").(string)), strings.TrimSpace(d.Get("credential_secret").(string))
	if blob == "" && seed == "" {
		return nil, nil
	}
	a := &credentialActivation{ek: d.Get("endorsement_key").(string)}
	for name, dst := range map[string]*[]byte{"credential_blob": &a.idObject, "credential_secret": &a.encSeed} {
		v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(d.Get(name).(string)))
		if err != nil || len(v) == 0 || len(v) > 1024 {
			return nil, badInput("%s must be base64 of 1 to 1024 bytes (both credential_blob and credential_secret are needed)", name)
		}
		*dst = v
	}
	return a, nil
}

// attestationStatusPath holds the periodic check's last result: no secret,
// only the access key, when, and what was found.
const attestationStatusPath = "attestation/status"

// defaultAttestationCheckPeriod is how often the active node checks the
// key's properties unless attestation_check_period says otherwise.
const defaultAttestationCheckPeriod = 10 * time.Minute

// maxAttestationCheckPeriod bounds attestation_check_period.
const maxAttestationCheckPeriod = 7 * 24 * time.Hour

// attestationStatus is the last check's result.
type attestationStatus struct {
	AccessKey string    `json:"access_key"`
	KeyRef    string    `json:"key_ref"` // which key of the store: see keyRef
	CheckedAt time.Time `json:"checked_at"`
	Exposures []string  `json:"exposures,omitempty"`
	Problem   string    `json:"problem,omitempty"`    // why the check could not be made
	RotatedTo string    `json:"rotated_to,omitempty"` // the key rotate_on_exposure replaced it with
	RotatedAt time.Time `json:"rotated_at,omitempty"`
}

// keyRef names the configured key: its store and reference, without
// credentials. A status recorded for another key (a config written since)
// does not apply.
func keyRef(cfg *pluginConfig) string {
	raw, _ := json.Marshal(storeRef(cfg))
	sum := sha256.Sum256(append([]byte(cfg.KeyStore+"\x00"+cfg.AccessKey+"\x00"), raw...))
	return hex.EncodeToString(sum[:16])
}

// about reports whether the status is about the configured key.
func (st *attestationStatus) about(cfg *pluginConfig) bool {
	return st != nil && st.AccessKey == cfg.AccessKey && st.KeyRef == keyRef(cfg)
}

func (b *backend) attestationStatus(ctx context.Context, s logical.Storage) (*attestationStatus, error) {
	entry, err := s.Get(ctx, attestationStatusPath)
	if err != nil || entry == nil {
		return nil, err
	}
	st := new(attestationStatus)
	return st, entry.DecodeJSON(st)
}

func (b *backend) putAttestationStatus(ctx context.Context, s logical.Storage, st *attestationStatus) error {
	entry, err := logical.StorageEntryJSON(attestationStatusPath, st)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

// checkAttestationIfDue runs from the periodic function, on the active node
// only: when attestation_check_period has passed since the last check of
// the configured key, it asks the store for the key's properties again,
// records what it found, logs a regression, and with rotate_on_exposure
// rotates the exposed key away at once. No lock is held while the store is
// asked.
func (b *backend) checkAttestationIfDue(ctx context.Context, s logical.Storage) {
	if !b.WriteSafeReplicationState() {
		return
	}
	cfg, err := b.config(ctx, s)
	if err != nil || cfg == nil || cfg.attestationCheckPeriod() <= 0 {
		return
	}
	last, err := b.attestationStatus(ctx, s)
	if err != nil {
		b.Logger().Warn("attestation check: cannot read its last result", "error", err)
		return
	}
	// Vault calls the periodic function about once a minute: a check due a
	// few seconds from now is made now rather than a minute late.
	if last.about(cfg) && time.Now().Add(5*time.Second).Before(last.CheckedAt.Add(cfg.attestationCheckPeriod())) {
		return
	}
	st := b.checkAttestation(ctx, s)
	if st == nil {
		return
	}
	if err := b.putAttestationStatus(ctx, s, st); err != nil {
		b.Logger().Warn("attestation check: cannot record its result", "error", err)
	}
	if len(st.Exposures) > 0 && cfg.RotateOnExposure {
		b.rotateExposed(ctx, s, st)
	}
}

// checkAttestation asks the store for the key's exposures; nil when there
// is no config any more.
func (b *backend) checkAttestation(ctx context.Context, s logical.Storage) *attestationStatus {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	att, cfg, err := b.attestKey(ctx, s, attestRequest{check: true})
	if cfg == nil {
		return nil
	}
	st := &attestationStatus{AccessKey: cfg.AccessKey, KeyRef: keyRef(cfg), CheckedAt: time.Now().UTC()}
	switch {
	case err != nil:
		st.Problem = err.Error()
		detail := err
		var se *storeError
		if errors.As(err, &se) {
			detail = se.err // the store's own words, for the log only
		}
		b.Logger().Warn("attestation check: the key store could not be asked", "key_store", cfg.KeyStore, "error", detail)
	case len(att.exposures) > 0:
		st.Exposures = att.exposures
		b.Logger().Error("attestation check: the key's protection has regressed: it can leave its store",
			"key_store", cfg.KeyStore, "access_key", cfg.AccessKey, "exposures", strings.Join(att.exposures, "; "), "rotate_on_exposure", cfg.RotateOnExposure)
	}
	return st
}

// rotateExposed rotates the root key away from an exposed one, as
// config/rotate-root does, unless the config has moved on meanwhile.
func (b *backend) rotateExposed(ctx context.Context, s logical.Storage, st *attestationStatus) {
	b.configLock.Lock()
	defer b.configLock.Unlock()
	cfg, err := b.config(ctx, s)
	if err != nil || cfg == nil || !st.about(cfg) {
		return
	}
	resp, err := b.rotateRoot(ctx, s)
	if err != nil {
		b.Logger().Error("rotate_on_exposure: rotation failed; the next check tries again", "access_key", st.AccessKey, "error", err)
		return
	}
	st.RotatedTo, _ = resp.Data["access_key"].(string)
	st.RotatedAt = time.Now().UTC()
	b.Logger().Warn("rotate_on_exposure: the exposed key was rotated away", "previous_access_key", st.AccessKey, "access_key", st.RotatedTo)
	if err := b.putAttestationStatus(ctx, s, st); err != nil {
		b.Logger().Warn("attestation check: cannot record the rotation", "error", err)
	}
}

// attestationWarnings are the config read's warnings from the last check.
func (b *backend) attestationWarnings(ctx context.Context, s logical.Storage, cfg *pluginConfig) []string {
	st, err := b.attestationStatus(ctx, s)
	switch {
	case err != nil:
		return []string{"attestation: the last check's result cannot be read: " + err.Error()}
	case st == nil:
		return nil
	case st.about(cfg) && len(st.Exposures) > 0:
		return []string{fmt.Sprintf("attestation: the key's protection has regressed (found %s): %s; it may have left its key store: rotate it (config/rotate-root), or set rotate_on_exposure",
			formatTime(st.CheckedAt), strings.Join(st.Exposures, "; "))}
	case st.RotatedTo == cfg.AccessKey && st.RotatedTo != "":
		return []string{fmt.Sprintf("attestation: the previous access key %s was rotated away at %s because its protection had regressed: %s",
			st.AccessKey, formatTime(st.RotatedAt), strings.Join(st.Exposures, "; "))}
	}
	return nil
}

// attestationCheckPeriod is how often the active node checks; 0: never.
func (c *commonConfig) attestationCheckPeriod() time.Duration {
	if c.AttestationCheckPeriod == nil {
		return defaultAttestationCheckPeriod
	}
	return *c.AttestationCheckPeriod
}

// parseAttestation copies the attestation fields present in d.
func (c *commonConfig) parseAttestation(d *framework.FieldData) {
	if v, ok := d.GetOk("attestation_check_period"); ok {
		p := time.Duration(v.(int)) * time.Second
		c.AttestationCheckPeriod = &p
	}
	if v, ok := d.GetOk("rotate_on_exposure"); ok {
		c.RotateOnExposure = v.(bool)
	}
}
