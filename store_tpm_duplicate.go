package awshmac

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
)

// tpm_mode=duplicate: the key is wrapped in software to each enrolled
// node's TPM (tpm_targets), one blob per target (tpm_blobs); each node
// imports its own. Targets are allowed by the registration's EK CA, never
// by whoever writes config: a target is where the next secret goes.

const (
	tpmModeCreate    = "create"
	tpmModeDuplicate = "duplicate"
	maxTPMTargets    = 32
	// maxTPMField bounds a JSON field: 32 targets with certificate chains.
	maxTPMField = 1 << 20
)

// tpmEKPolicy is what the registration allows as a duplication target:
// TPMs whose EK certificate chains to its CA bundle, and the TPMs without
// one (SRKs) whose parent Names it lists.
type tpmEKPolicy struct {
	roots      *x509.CertPool
	err        error // the CA file could not be read: every certified target is refused
	pinned     []string
	pinErr     error // the Names list is not one: every duplicate config is refused
	configured bool
}

// maxPinnedNames bounds AWS_HMAC_TPM_ALLOW_SRK: one Name per node.
const maxPinnedNames = 64

func loadTPMEKPolicy(path, names string) tpmEKPolicy {
	p := tpmEKPolicy{configured: path != ""}
	p.pinned, p.pinErr = parsePinnedNames(names)
	if path == "" {
		return p
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		p.err = fmt.Errorf("%s cannot be read", envTPMEKCA)
		return p
	}
	p.roots = x509.NewCertPool()
	if !p.roots.AppendCertsFromPEM(pem) {
		p.roots, p.err = nil, fmt.Errorf("%s holds no PEM certificate", envTPMEKCA)
	}
	return p
}

// parsePinnedNames reads the parent Names of the uncertified targets the
// registration vouches for. A flag (the former value 1) is refused: with
// it, whoever may write config could list a key pair of their own in the
// SRK template and receive the next rotated secret.
func parsePinnedNames(v string) ([]string, error) {
	names := splitList(v, ",")
	if len(names) > maxPinnedNames {
		return nil, fmt.Errorf("%s lists more than %d Names", envTPMAllowSRK, maxPinnedNames)
	}
	for i, n := range names {
		raw, err := hex.DecodeString(n)
		if err != nil || len(raw) < 34 || len(raw) > 66 {
			return nil, fmt.Errorf("%s must list the parent Names (hex, as aws-hmac tpm enroll prints them in parent_name) of the TPMs without an EK certificate that may receive the key; a flag such as 1 is not enough, since it would let whoever may write config add a key pair of their own as a target and receive the next secret", envTPMAllowSRK)
		}
		names[i] = strings.ToLower(n)
	}
	return names, nil
}

// verify refuses a target the registration does not allow.
func (p tpmEKPolicy) verify(i int, t *tpm.Target) error {
	if p.pinErr != nil {
		return badInput("tpm_targets: the plugin's registration is refused: %v", p.pinErr)
	}
	err := tpm.VerifyTarget(t, p.roots, p.pinned)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tpm.ErrUncertified):
		return badInput("tpm_targets[%d]: a target without an EK certificate (an SRK) is refused unless the plugin's registration lists its parent Name in %s (only Vault's operator may vouch for a TPM that has no certificate)", i, envTPMAllowSRK)
	case p.err != nil:
		return badInput("tpm_targets[%d]: the plugin's registration has no usable EK CA bundle: %v", i, p.err)
	case !p.configured:
		return badInput("tpm_targets[%d]: the plugin's registration names no EK CA bundle (%s) to check the target's EK certificate against", i, envTPMEKCA)
	}
	return badInput("tpm_targets[%d]: %s", i, strings.TrimPrefix(err.Error(), "tpm: "))
}

// parseJSONList decodes a field holding a JSON array, strictly.
func parseJSONList(name, raw string, dst any) error {
	if len(raw) > maxTPMField {
		return badInput("%s is longer than %d bytes", name, maxTPMField)
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badInput("%s must be a JSON array as aws-hmac tpm enroll / wrap write it", name)
	}
	if dec.More() {
		return badInput("%s must be one JSON array", name)
	}
	return nil
}

// validateDuplicate checks the targets against the registration and that
// the blobs, when given, are one per target.
func (p *tpmParams) validateDuplicate(env *operatorEnv) error {
	switch {
	case p.PersistentHandle != 0 || p.ParentHandle != 0:
		return badInput("tpm_mode: duplicate imports under each node's own parent; leave tpm_persistent_handle and tpm_parent_handle unset")
	case len(p.Public) > 0 || len(p.Private) > 0:
		return badInput("tpm_mode: duplicate takes tpm_blobs, not tpm_public and tpm_private")
	case len(p.PCRs) > 0:
		return badInput("tpm_pcrs: with tpm_mode=duplicate each node's PCRs are chosen at enrolment (aws-hmac tpm enroll -pcrs)")
	case len(p.Targets) == 0:
		return badInput("tpm_targets: tpm_mode=duplicate needs the enrolled nodes (aws-hmac tpm enroll)")
	case len(p.Targets) > maxTPMTargets:
		return badInput("tpm_targets: at most %d targets", maxTPMTargets)
	}
	seen, err := p.checkTargets(env)
	if err != nil {
		return err
	}
	return p.validateBlobs(seen)
}

// checkTargets verifies each target against the registration's policy.
func (p *tpmParams) checkTargets(env *operatorEnv) (map[string]bool, error) {
	seen := map[string]bool{}
	for i := range p.Targets {
		t := &p.Targets[i]
		if err := env.tpmEK.verify(i, t); err != nil {
			return nil, err
		}
		if seen[t.Parent+t.Name] {
			return nil, badInput("tpm_targets[%d]: the same TPM parent is listed twice", i)
		}
		seen[t.Parent+t.Name] = true
	}
	return seen, nil
}

// checkImport stops a rotation before IAM makes a key when a target is no
// longer one the registration allows (its Name taken out of the list,
// another CA): the new secret must reach only the TPMs it vouches for.
func (p *tpmParams) checkImport(context.Context) error {
	if p.Mode != tpmModeDuplicate {
		return nil
	}
	_, err := p.checkTargets(p.registration())
	return err
}

func (p *tpmParams) validateBlobs(targets map[string]bool) error {
	// A target without a blob (a node just added) answers 503 until the
	// next rotation or wrap; a blob must be for a listed target.
	covered := map[string]bool{}
	for i := range p.Blobs {
		b := &p.Blobs[i]
		key := b.Parent + strings.ToLower(b.ParentName)
		if !targets[key] || covered[key] {
			return badInput("tpm_blobs[%d]: not wrapped to one of tpm_targets, or a second blob for one", i)
		}
		covered[key] = true
		if len(b.Public) == 0 || len(b.Duplicate) == 0 || len(b.Seed) == 0 {
			return badInput("tpm_blobs[%d]: public, duplicate and encrypted_seed are required", i)
		}
		t := &p.Targets[slices.IndexFunc(p.Targets, func(t tpm.Target) bool { return t.Parent+t.Name == key })]
		if err := tpm.CheckBlob(t, b, p.Password != ""); err != nil {
			return badInput("tpm_blobs[%d]: %s", i, strings.TrimPrefix(err.Error(), "tpm: "))
		}
	}
	return nil
}

// wrapToTargets wraps secret to every target: the blobs a rotation
// switches to only once each node's copy exists.
func (p *tpmParams) wrapToTargets(ctx context.Context, accessKey, secret string) (storeKey, error) {
	// Checked again here, against the registration as it is now: the
	// secret goes to these TPMs.
	if _, err := p.checkTargets(p.registration()); err != nil {
		return nil, err
	}
	blobs := make([]tpm.Blob, 0, len(p.Targets))
	for i := range p.Targets {
		b, err := tpm.Wrap(&p.Targets[i], secret, p.Password)
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, *b)
	}
	p.Blobs = blobs
	return tpm.Open(ctx, p.config(), accessKey)
}

// registration is the environment this config was last validated
// against (the backend's own): an unvalidated config allows no target.
func (p *tpmParams) registration() *operatorEnv {
	nodeDeviceMu.Lock()
	defer nodeDeviceMu.Unlock()
	if p.env == nil {
		return &operatorEnv{tpmEK: tpmEKPolicy{pinErr: errors.New("the config was not checked against the registration")}}
	}
	return p.env
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// hasTarget: a target with this parent kind and Name is listed.
func (p *tpmParams) hasTarget(kind, name string) bool {
	return slices.ContainsFunc(p.Targets, func(t tpm.Target) bool { return t.Parent == kind && strings.EqualFold(t.Name, name) })
}
