package awshmac

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

const (
	rolePrefix = "roles/"

	credentialNone            = "none" // a sign-only role
	credentialSessionToken    = "session_token"
	credentialAssumedRole     = "assumed_role"
	credentialFederationToken = "federation_token"

	signWithKey     = "key"
	signWithSession = "session"
)

var (
	credentialTypes = []string{credentialNone, credentialSessionToken, credentialAssumedRole, credentialFederationToken}
	signWiths       = []string{signWithKey, signWithSession}
)

// STS duration limits per credential type.
var stsTTLLimits = map[string]struct{ min, max time.Duration }{
	credentialSessionToken:    {15 * time.Minute, 36 * time.Hour},
	credentialAssumedRole:     {15 * time.Minute, 12 * time.Hour},
	credentialFederationToken: {15 * time.Minute, 36 * time.Hour},
}

var (
	roleNameRe  = regexp.MustCompile(`^[\w.@-]{1,128}$`)
	roleARNRe   = regexp.MustCompile(`^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	policyARNRe = regexp.MustCompile(`^arn:aws[\w-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}$`)
	tagRe       = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	externalRe  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	sourceIDRe  = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	mfaSerialRe = regexp.MustCompile(`^[\w+=/:,.@-]{9,256}$`)
	serviceRe   = regexp.MustCompile(`^[a-z0-9*][a-z0-9.*-]{0,62}$`)
	regionOrAny = regexp.MustCompile(`^(\*|[a-z]{2}(-[a-z]+)+-\d+)$`)
	// A host: *, or an optional "*." and then at least one DNS label, or an
	// IP literal; with an optional port.
	hostPatternRe = regexp.MustCompile(`^(\*|(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(:\d{1,5})?$`)
)

// roleEntry is a role as stored. Entries handed out by the cache are
// shared: copy before changing one.
type roleEntry struct {
	CredentialType    string            `json:"credential_type"`
	RoleARNs          []string          `json:"role_arns,omitempty"`
	PolicyARNs        []string          `json:"policy_arns,omitempty"`
	PolicyDocument    string            `json:"policy_document,omitempty"`
	SessionTags       map[string]string `json:"session_tags,omitempty"`
	TransitiveTagKeys []string          `json:"transitive_tag_keys,omitempty"`
	ExternalID        string            `json:"external_id,omitempty"`
	SourceIdentity    string            `json:"source_identity,omitempty"`
	MFASerialNumber   string            `json:"mfa_serial_number,omitempty"`
	DefaultSTSTTL     time.Duration     `json:"default_sts_ttl"`
	MaxSTSTTL         time.Duration     `json:"max_sts_ttl"`
	AllowedServices   []string          `json:"allowed_services,omitempty"`
	AllowedRegions    []string          `json:"allowed_regions,omitempty"`
	AllowedHosts      []string          `json:"allowed_hosts,omitempty"`

	// Signing scope below the service; empty means no limit beyond the others.
	AllowedMethods    []string      `json:"allowed_methods,omitempty"`
	AllowedPaths      []string      `json:"allowed_paths,omitempty"`
	AllowedActions    []string      `json:"allowed_actions,omitempty"`
	MaxPresignExpires time.Duration `json:"max_presign_expires,omitempty"`
	SignWith          string        `json:"sign_with,omitempty"`
	AllowedSchemes    []string      `json:"allowed_schemes,omitempty"`

	// Session identity, from the Vault caller.
	RoleSessionNameTemplate string   `json:"role_session_name_template,omitempty"`
	SourceIdentityTemplate  string   `json:"source_identity_template,omitempty"`
	AllowedSessionNames     []string `json:"allowed_session_names,omitempty"`
	AuditSessionTags        bool     `json:"audit_session_tags,omitempty"`

	// Revocation and chaining (revocation.go).
	RevokeMode string   `json:"revoke_mode,omitempty"`
	RoleChain  []string `json:"role_chain,omitempty"`
}

// signOnly reports a role without STS credentials of its own.
func (r *roleEntry) signOnly() bool { return r.CredentialType == credentialNone }

func (r *roleEntry) toResponseData() map[string]any {
	tags := r.SessionTags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{
		"credential_type":     r.CredentialType,
		"role_arns":           nonNil(r.RoleARNs),
		"policy_arns":         nonNil(r.PolicyARNs),
		"policy_document":     r.PolicyDocument,
		"session_tags":        tags,
		"transitive_tag_keys": nonNil(r.TransitiveTagKeys),
		"external_id":         r.ExternalID,
		"source_identity":     r.SourceIdentity,
		"mfa_serial_number":   r.MFASerialNumber,
		"default_sts_ttl":     int64(r.DefaultSTSTTL / time.Second),
		"max_sts_ttl":         int64(r.MaxSTSTTL / time.Second),
		"allowed_services":    nonNil(r.AllowedServices),
		"allowed_regions":     nonNil(r.AllowedRegions),
		"allowed_hosts":       nonNil(r.AllowedHosts),
		"allowed_methods":     nonNil(r.AllowedMethods),
		"allowed_paths":       nonNil(r.AllowedPaths),
		"allowed_actions":     nonNil(r.AllowedActions),
		"max_presign_expires": int64(r.MaxPresignExpires / time.Second),
		"sign_with":           r.SignWith,
		"allowed_schemes":     nonNil(r.AllowedSchemes),

		"role_session_name_template": r.RoleSessionNameTemplate,
		"source_identity_template":   r.SourceIdentityTemplate,
		"allowed_session_names":      nonNil(r.AllowedSessionNames),
		"audit_session_tags":         r.AuditSessionTags,

		"revoke_mode": cmp.Or(r.RevokeMode, revokeModeNone),
		"role_chain":  nonNil(r.RoleChain),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// applyDefaults fills the lifetimes left unset and compacts the policy.
func (r *roleEntry) applyDefaults() {
	if r.CredentialType == "" {
		r.CredentialType = credentialNone
	}
	if r.SignWith == "" {
		r.SignWith = defaultSignWith(r)
	}
	for i, m := range r.AllowedMethods {
		r.AllowedMethods[i] = strings.ToUpper(m)
	}
	if r.RevokeMode == "" {
		r.RevokeMode = revokeModeNone
	}
	if limits, ok := stsTTLLimits[r.CredentialType]; ok && r.MaxSTSTTL == 0 {
		r.MaxSTSTTL = limits.max
		if len(r.RoleChain) > 0 {
			r.MaxSTSTTL = stscreds.ChainedSessionLimit
		}
	}
	if r.DefaultSTSTTL == 0 && !r.signOnly() {
		r.DefaultSTSTTL = min(time.Hour, r.MaxSTSTTL)
	}
	var doc map[string]any
	if r.PolicyDocument != "" && json.Unmarshal([]byte(r.PolicyDocument), &doc) == nil {
		compact, _ := json.Marshal(doc)
		r.PolicyDocument = string(compact)
	}
}

// defaultSignWith: a role that mints signs with its own STS session, so
// that AWS enforces the role's policy on every request signed as well; a
// role that only signs, or needs an MFA code to mint, signs with the key.
func defaultSignWith(r *roleEntry) string {
	if r.signOnly() || r.MFASerialNumber != "" {
		return signWithKey
	}
	return signWithSession
}

// validate checks a role, defaults applied, against STS's limits; the
// error names the field at fault. It changes nothing.
func (r *roleEntry) validate() error {
	for _, check := range []func() error{r.validateType, r.validateARNs, r.validateTags, r.validateIDs, r.validateTTLs, r.validateScope, r.validateSigningScope, r.validateIdentity, r.validateSignWith, r.validateRevocation, r.validateChain} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (r *roleEntry) validateType() error {
	if !slices.Contains(credentialTypes, r.CredentialType) {
		return badInput("credential_type must be one of %s", strings.Join(credentialTypes, ", "))
	}
	if r.signOnly() {
		return r.validateSignOnly()
	}
	assumed, federation, session := r.CredentialType == credentialAssumedRole, r.CredentialType == credentialFederationToken, r.CredentialType == credentialSessionToken
	switch {
	case assumed && len(r.RoleARNs) == 0:
		return badInput("role_arns is required for credential_type assumed_role")
	case !assumed && len(r.RoleARNs) > 0:
		return badInput("role_arns is only for credential_type assumed_role")
	case session && (len(r.PolicyARNs) > 0 || r.PolicyDocument != "" || len(r.SessionTags) > 0):
		return badInput("policy_arns, policy_document and session_tags do not apply to credential_type session_token")
	case !assumed && (len(r.TransitiveTagKeys) > 0 || r.ExternalID != "" || r.SourceIdentity != ""):
		return badInput("transitive_tag_keys, external_id and source_identity are only for credential_type assumed_role")
	case federation && r.MFASerialNumber != "":
		return badInput("mfa_serial_number does not apply to credential_type federation_token")
	}
	return nil
}

func (r *roleEntry) validateARNs() error {
	if len(r.PolicyARNs) > 10 {
		return badInput("policy_arns: at most 10 managed policies")
	}
	if i := firstMismatch(r.RoleARNs, roleARNRe); i > 0 {
		return badInput("role_arns: item %d is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", i)
	}
	if i := firstMismatch(r.PolicyARNs, policyARNRe); i > 0 {
		return badInput("policy_arns: item %d is not an IAM policy ARN", i)
	}
	if r.PolicyDocument == "" {
		return nil
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.PolicyDocument), &doc); err != nil {
		return badInput("policy_document is not a JSON object")
	}
	if len(r.PolicyDocument)+len(strings.Join(r.PolicyARNs, "")) > 2048 {
		return badInput("policy_document and policy_arns together exceed STS's 2048 characters")
	}
	return nil
}

func (r *roleEntry) validateTags() error {
	if len(r.SessionTags) > 50 {
		return badInput("session_tags: at most 50 tags")
	}
	if len(r.TransitiveTagKeys) > 50 {
		return badInput("transitive_tag_keys: at most 50 keys")
	}
	lowerTags := map[string]bool{}
	for k, v := range r.SessionTags {
		if len([]rune(k)) < 1 || len([]rune(k)) > 128 || !tagRe.MatchString(k) {
			return badInput("session_tags: keys must be 1 to 128 letters, digits, spaces or _.:/=+-@")
		}
		if isTemplate(v) {
			if err := checkTemplate(v); err != nil {
				return badInput("session_tags: a value is not a valid identity template")
			}
		} else if len([]rune(v)) > 256 || !tagRe.MatchString(v) {
			return badInput("session_tags: values must be up to 256 letters, digits, spaces or _.:/=+-@")
		}
		if lowerTags[strings.ToLower(k)] {
			return badInput("session_tags: two keys differ only in case; tag keys are case-insensitive")
		}
		lowerTags[strings.ToLower(k)] = true
	}
	for i, k := range r.TransitiveTagKeys {
		if !lowerTags[strings.ToLower(k)] {
			return badInput("transitive_tag_keys: item %d is not one of session_tags", i+1)
		}
	}
	return nil
}

func (r *roleEntry) validateIDs() error {
	switch {
	case r.ExternalID != "" && (len(r.ExternalID) < 2 || len(r.ExternalID) > 1224 || !externalRe.MatchString(r.ExternalID)):
		return badInput("external_id must be 2 to 1224 characters of letters, digits and +=,.@:/-_")
	case r.SourceIdentity != "" && (!sourceIDRe.MatchString(r.SourceIdentity) || strings.HasPrefix(strings.ToLower(r.SourceIdentity), "aws:")):
		return badInput("source_identity must be 2 to 64 characters of letters, digits and +=,.@-_, not starting with aws:")
	case r.MFASerialNumber != "" && !mfaSerialRe.MatchString(r.MFASerialNumber):
		return badInput("mfa_serial_number must be 9 to 256 characters: a device serial or an MFA ARN")
	}
	return nil
}

// validateSignOnly refuses every credential field on a role that only signs.
func (r *roleEntry) validateSignOnly() error {
	switch {
	case len(r.RoleARNs)+len(r.PolicyARNs)+len(r.SessionTags)+len(r.TransitiveTagKeys)+len(r.AllowedSessionNames) > 0,
		r.PolicyDocument != "" || r.ExternalID != "" || r.SourceIdentity != "" || r.MFASerialNumber != "",
		r.RoleSessionNameTemplate != "" || r.SourceIdentityTemplate != "" || r.AuditSessionTags,
		r.DefaultSTSTTL != 0 || r.MaxSTSTTL != 0:
		return badInput("credential_type: a sign-only role (none) takes no credential fields; set credential_type to mint credentials")
	case r.SignWith == signWithSession:
		return badInput("sign_with: session needs a credential_type that mints the role's own session")
	}
	return nil
}

// validateSignWith: a shared signing session cannot answer an MFA prompt.
func (r *roleEntry) validateSignWith() error {
	if r.SignWith == signWithSession && r.MFASerialNumber != "" {
		return badInput("sign_with: session cannot be used with mfa_serial_number")
	}
	return nil
}

func (r *roleEntry) validateTTLs() error {
	if r.signOnly() {
		return nil
	}
	limits := stsTTLLimits[r.CredentialType]
	switch {
	case r.MaxSTSTTL < limits.min || r.MaxSTSTTL > limits.max:
		return badInput("max_sts_ttl must be between %s and %s for %s", limits.min, limits.max, r.CredentialType)
	case r.DefaultSTSTTL < limits.min || r.DefaultSTSTTL > limits.max:
		return badInput("default_sts_ttl must be between %s and %s for %s", limits.min, limits.max, r.CredentialType)
	case r.DefaultSTSTTL > r.MaxSTSTTL:
		return badInput("default_sts_ttl must not exceed max_sts_ttl")
	}
	return nil
}

func (r *roleEntry) validateScope() error {
	for name, list := range map[string][]string{
		"allowed_services": r.AllowedServices, "allowed_regions": r.AllowedRegions, "allowed_hosts": r.AllowedHosts,
		"allowed_methods": r.AllowedMethods, "allowed_paths": r.AllowedPaths, "allowed_actions": r.AllowedActions,
		"allowed_session_names": r.AllowedSessionNames, "role_arns": r.RoleARNs, "allowed_schemes": r.AllowedSchemes,
	} {
		if len(list) > maxListItems {
			return badInput("%s: at most %d items", name, maxListItems)
		}
	}
	if i := firstMismatch(r.AllowedServices, serviceRe); i > 0 {
		return badInput("allowed_services: item %d is not a service signing name such as s3 or sts", i)
	}
	if i := firstMismatch(r.AllowedRegions, regionOrAny); i > 0 {
		return badInput("allowed_regions: item %d is not a region name or *", i)
	}
	if i := firstMismatch(r.AllowedHosts, hostPatternRe); i > 0 {
		return badInput("allowed_hosts: item %d is not a host name (with an optional :port), *.domain or *", i)
	}
	return nil
}

// firstMismatch is the 1-based position of the first item re refuses, or 0.
func firstMismatch(items []string, re *regexp.Regexp) int {
	for i, s := range items {
		if !re.MatchString(s) {
			return i + 1
		}
	}
	return 0
}

// roleCache keeps the roles read from storage. Misses are not cached, so a
// caller naming roles that do not exist cannot fill memory.
type roleCache struct {
	mu         sync.Mutex // orders fills against writes and invalidations
	generation uint64
	hits       sync.Map // name -> *roleEntry, read without the lock
}

func (c *roleCache) get(name string) (*roleEntry, bool) {
	v, ok := c.hits.Load(name)
	if !ok {
		return nil, false
	}
	return v.(*roleEntry), true
}

func (c *roleCache) set(name string, r *roleEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.generation {
		return // a write or invalidation raced this fill
	}
	c.hits.Store(name, r)
}

func (c *roleCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	c.hits.Delete(name)
}

func (c *roleCache) gen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// role returns the role, from memory once read; nil when there is none.
func (b *backend) role(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	if r, ok := b.roles.get(name); ok {
		return r, nil
	}
	gen := b.roles.gen()
	entry, err := s.Get(ctx, rolePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("read role %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	role := new(roleEntry)
	if err := entry.DecodeJSON(role); err != nil {
		return nil, fmt.Errorf("decode role %q: %w", name, err)
	}
	b.roles.set(name, role, gen)
	return role, nil
}

// existingRole is role for paths that need one: a missing role is the caller's mistake.
func (b *backend) existingRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	role, err := b.role(ctx, s, name)
	if err == nil && role == nil {
		return nil, badInput("name: no role of that name exists")
	}
	return role, err
}

// putRole stores the role and caches it; nil deletes it.
func (b *backend) putRole(ctx context.Context, s logical.Storage, name string, role *roleEntry) error {
	var err error
	if role == nil {
		err = s.Delete(ctx, rolePrefix+name)
	} else {
		var entry *logical.StorageEntry
		if entry, err = logical.StorageEntryJSON(rolePrefix+name, role); err == nil {
			err = s.Put(ctx, entry)
		}
	}
	b.roles.drop(name)
	if err == nil && role != nil {
		b.roles.set(name, role, b.roles.gen())
	}
	return err
}
