package awshmac

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

// Per-lease revocation of assumed-role sessions. AWS evaluates a role's
// policies on every request, and aws:userid names one session
// (AROA...:session-name), so revoking a lease records its session here —
// storage is the source of truth — and rewrites one inline policy on the
// target role, named after the mount, that denies everything to the
// sessions recorded, and, after the kill switch, to every session this
// mount tagged before a time. Entries leave once their session has expired.

const (
	revokeModeNone        = "none"
	revokeModeDenySession = "deny_session"

	// mountTagKey is the session tag that marks the sessions this mount mints
	// for deny_session roles, for the kill switch's condition.
	mountTagKey = "vault-aws-hmac-mount"

	revocationPrefix = "revocation/"
	mountIDPath      = "revocation-mount"

	// maxInlinePolicyChars is IAM's quota on a role's inline policies
	// together, whitespace not counted.
	maxInlinePolicyChars = 10240
	maxChainHops         = 5

	// expiryMargin: Vault revokes a lease when it expires, which is within
	// a second of its session's end (the lease is the whole seconds left).
	// A session that close to its end is left to expire rather than
	// written into IAM, so expiring leases cost no IAM call.
	expiryMargin = 5 * time.Second
)

var revokeModes = []string{revokeModeNone, revokeModeDenySession}

// assumedRoleIDRe is the shape of AssumeRole's AssumedRoleId.
var assumedRoleIDRe = regexp.MustCompile(`^AROA[A-Z0-9]{8,124}:[\w+=,.@-]{2,64}$`)

// validateRevocation: deny_session needs assumed-role sessions with names
// no later session can share.
func (r *roleEntry) validateRevocation() error {
	switch {
	case !slices.Contains(revokeModes, r.RevokeMode):
		return badInput("revoke_mode must be one of %s", strings.Join(revokeModes, ", "))
	case r.RevokeMode == revokeModeNone:
		return nil
	case r.CredentialType != credentialAssumedRole:
		return badInput("revoke_mode: deny_session applies only to assumed_role; session_token and federation_token credentials cannot be denied per session")
	case r.RoleSessionNameTemplate != "" && !strings.Contains(r.RoleSessionNameTemplate, tplRandom):
		return badInput("role_session_name_template must contain {{random}} with revoke_mode deny_session: a revoked name must never be given to a later session")
	case len(r.AllowedSessionNames) > 0:
		return badInput("allowed_session_names must be empty with revoke_mode deny_session: a caller could reuse a revoked session's name")
	}
	extra := 1
	if r.AuditSessionTags {
		extra += 2
	}
	if len(r.SessionTags)+extra > 50 {
		return badInput("session_tags: at most %d tags with revoke_mode deny_session, which adds its own", 50-extra)
	}
	for k := range r.SessionTags {
		if strings.EqualFold(k, mountTagKey) {
			return badInput("session_tags: the key %s is reserved for revoke_mode", mountTagKey)
		}
	}
	return nil
}

// validateChain: role_chain items are role ARNs, each with an optional
// #external-id; the chained session lives at most an hour.
func (r *roleEntry) validateChain() error {
	if len(r.RoleChain) == 0 {
		return nil
	}
	if r.CredentialType != credentialAssumedRole {
		return badInput("role_chain applies only to credential_type assumed_role")
	}
	if len(r.RoleChain) > maxChainHops {
		return badInput("role_chain: at most %d roles", maxChainHops)
	}
	for i, h := range r.chainHops() {
		if !roleARNRe.MatchString(h.RoleARN) {
			return badInput("role_chain: item %d is not an IAM role ARN, optionally followed by #external-id", i+1)
		}
		if h.ExternalID != "" && (len(h.ExternalID) < 2 || len(h.ExternalID) > 1224 || !externalRe.MatchString(h.ExternalID)) {
			return badInput("role_chain: item %d's external ID must be 2 to 1224 characters of letters, digits and +=,.@:/-_", i+1)
		}
	}
	if r.MaxSTSTTL > stscreds.ChainedSessionLimit {
		return badInput("max_sts_ttl must be at most 1h with role_chain: STS limits chained sessions to an hour")
	}
	return nil
}

// chainHops parses role_chain.
func (r *roleEntry) chainHops() []stscreds.Hop {
	var hops []stscreds.Hop
	for _, item := range r.RoleChain {
		arn, ext, _ := strings.Cut(item, "#")
		hops = append(hops, stscreds.Hop{RoleARN: arn, ExternalID: ext})
	}
	return hops
}

// sessionRoleARNs are the roles whose sessions the caller receives: the
// chain's last, or each of role_arns.
func (r *roleEntry) sessionRoleARNs() []string {
	if hops := r.chainHops(); len(hops) > 0 {
		return []string{hops[len(hops)-1].RoleARN}
	}
	return r.RoleARNs
}

// revokedSession is one revoked session, kept until it has expired, or
// until a kill switch covers it.
type revokedSession struct {
	ID      string    `json:"id"` // aws:userid, AROA...:session-name
	Expires time.Time `json:"expires"`
	// IssuedBy: AWS issued the session no later than this; zero when
	// unknown, and then no kill switch is taken to cover it.
	IssuedBy time.Time `json:"issued_by,omitzero"`
}

// coveredBy: the kill switch statement with DeniedBefore t denies the
// session too (it carries the mount tag, and AWS issued it before t).
func (s revokedSession) coveredBy(t time.Time) bool {
	return !t.IsZero() && !s.IssuedBy.IsZero() && s.IssuedBy.Before(t)
}

// revocationRecord is what one target role's deny policy is built from.
type revocationRecord struct {
	RoleARN  string           `json:"role_arn"`
	Sessions []revokedSession `json:"sessions,omitempty"`
	// DeniedBefore, set by the kill switch: this mount's sessions issued
	// before it are denied until DeniedUntil, when the last has expired.
	DeniedBefore time.Time `json:"denied_before,omitzero"`
	DeniedUntil  time.Time `json:"denied_until,omitzero"`
}

// prune drops what has expired, and the sessions the kill switch statement
// denies already: that statement lives until DeniedUntil, past the end of
// every session issued before DeniedBefore, so they need no entry of their
// own, and a kill switch always leaves a policy that fits. It reports
// whether anything went.
func (rec *revocationRecord) prune(now time.Time) bool {
	n := len(rec.Sessions)
	pruned := false
	if !rec.DeniedUntil.IsZero() && !rec.DeniedUntil.After(now) {
		rec.DeniedBefore, rec.DeniedUntil, pruned = time.Time{}, time.Time{}, true
	}
	rec.Sessions = slices.DeleteFunc(rec.Sessions, func(s revokedSession) bool {
		return !s.Expires.After(now) || s.coveredBy(rec.DeniedBefore)
	})
	return pruned || len(rec.Sessions) != n
}

func (rec *revocationRecord) empty() bool { return len(rec.Sessions) == 0 && rec.DeniedBefore.IsZero() }

// policyStatement is one statement of the deny policy.
type policyStatement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    string                    `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition"`
}

// policy is the deny policy for the record; an error when it would not fit
// IAM's quota, so that the revocation fails instead of being dropped.
func (rec *revocationRecord) policy(mountID string) (string, error) {
	var sts []policyStatement
	if len(rec.Sessions) > 0 {
		ids := make([]string, 0, len(rec.Sessions))
		for _, s := range rec.Sessions {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		sts = append(sts, policyStatement{Sid: "RevokedSessions", Effect: "Deny", Action: "*", Resource: "*",
			Condition: map[string]map[string]any{"StringEquals": {"aws:userid": slices.Compact(ids)}}})
	}
	if !rec.DeniedBefore.IsZero() {
		sts = append(sts, policyStatement{Sid: "RevokedBefore", Effect: "Deny", Action: "*", Resource: "*",
			Condition: map[string]map[string]any{
				"StringEquals": {"aws:PrincipalTag/" + mountTagKey: mountID},
				"DateLessThan": {"aws:TokenIssueTime": rec.DeniedBefore.UTC().Format(time.RFC3339)},
			}})
	}
	doc, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": sts})
	if err != nil {
		return "", err
	}
	if len(doc) > maxInlinePolicyChars {
		return "", &policyQuotaError{sessions: len(rec.Sessions)}
	}
	return string(doc), nil
}

// policyQuotaError: the deny policy would not fit IAM's quota.
type policyQuotaError struct {
	sessions int
	role     string // the Vault role whose kill switch is the way out, when known
}

func (e *policyQuotaError) Error() string {
	msg := fmt.Sprintf("the deny policy for %d revoked sessions would exceed IAM's %d-character inline policy quota; the session is not revoked", e.sessions, maxInlinePolicyChars)
	if e.role != "" {
		msg += fmt.Sprintf("; roles/%s/revoke-sessions denies every session of this mount on that role and always fits", e.role)
	}
	return msg
}

func revocationKey(roleARN string) string {
	sum := sha256.Sum256([]byte(roleARN))
	return revocationPrefix + hex.EncodeToString(sum[:16])
}

func policyNameFor(mountID string) string { return "vault-aws-hmac-revoked-" + mountID }

// revocationLocks serialises the rebuilds of each target role's policy;
// a role's lock is a one-slot channel, so a caller that gives up stops
// waiting for it.
type revocationLocks struct {
	mu      sync.Mutex
	byRole  map[string]chan struct{}
	mountMu sync.Mutex // orders the mount ID's creation
	mountID string     // once read: it never changes
}

// lockRole takes the role's lock, or gives up with ctx; it returns the unlock.
func (l *revocationLocks) lockRole(ctx context.Context, arn string) (func(), error) {
	l.mu.Lock()
	if l.byRole == nil {
		l.byRole = map[string]chan struct{}{}
	}
	ch := l.byRole[arn]
	if ch == nil {
		ch = make(chan struct{}, 1)
		l.byRole[arn] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// mountID names this mount in its policy's name and its sessions' tag:
// random, made once and stored.
func (b *backend) mountID(ctx context.Context, s logical.Storage) (string, error) {
	b.revocations.mountMu.Lock()
	defer b.revocations.mountMu.Unlock()
	if b.revocations.mountID != "" {
		return b.revocations.mountID, nil
	}
	entry, err := s.Get(ctx, mountIDPath)
	if err != nil {
		return "", fmt.Errorf("read the mount ID: %w", err)
	}
	if entry != nil {
		b.revocations.mountID = string(entry.Value)
		return b.revocations.mountID, nil
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	if err := s.Put(ctx, &logical.StorageEntry{Key: mountIDPath, Value: []byte(id)}); err != nil {
		return "", fmt.Errorf("store the mount ID: %w", err)
	}
	b.revocations.mountID = id
	return id, nil
}

func (b *backend) readRevocation(ctx context.Context, s logical.Storage, roleARN string) (*revocationRecord, error) {
	entry, err := s.Get(ctx, revocationKey(roleARN))
	if err != nil {
		return nil, fmt.Errorf("read the revocations of a role: %w", err)
	}
	rec := &revocationRecord{RoleARN: roleARN}
	if entry != nil {
		if err := entry.DecodeJSON(rec); err != nil {
			return nil, fmt.Errorf("decode the revocations of a role: %w", err)
		}
	}
	return rec, nil
}

func (b *backend) writeRevocation(ctx context.Context, s logical.Storage, rec *revocationRecord) error {
	if rec.empty() {
		return s.Delete(ctx, revocationKey(rec.RoleARN))
	}
	entry, err := logical.StorageEntryJSON(revocationKey(rec.RoleARN), rec)
	if err == nil {
		err = s.Put(ctx, entry)
	}
	return err
}

// updateRevocation changes a target role's record and rebuilds its deny
// policy from it, expired entries pruned. Storage is written first and
// restored when IAM refuses, so storage never holds less than IAM
// enforces, and a revocation IAM did not take fails (Vault retries it).
// The role's lock is held across its IAM call, bounded by sts_timeout: a
// revocation of another role never waits for it.
func (b *backend) updateRevocation(ctx context.Context, s logical.Storage, roleARN string, change func(*revocationRecord)) error {
	mountID, err := b.mountID(ctx, s)
	if err != nil {
		return err
	}
	unlock, err := b.revocations.lockRole(ctx, roleARN)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := b.readRevocation(ctx, s, roleARN)
	if err != nil {
		return err
	}
	before := *rec
	before.Sessions = slices.Clone(rec.Sessions)
	change(rec)
	rec.prune(time.Now())
	doc, err := rec.policy(mountID)
	if err != nil {
		return err
	}
	if err := b.writeRevocation(ctx, s, rec); err != nil {
		return err
	}
	err = b.withEngine(ctx, s, func(e *engine) error {
		return e.applyDenyPolicy(ctx, roleARN, policyNameFor(mountID), doc, rec.empty())
	})
	if err != nil {
		if rerr := b.writeRevocation(ctx, s, &before); rerr != nil {
			b.Logger().Warn("revocation: could not restore the record after IAM refused", "error", rerr)
		}
		return err
	}
	return nil
}

// applyDenyPolicy writes the policy, or deletes it when nothing is denied.
func (e *engine) applyDenyPolicy(ctx context.Context, roleARN, name, doc string, empty bool) error {
	if empty {
		return e.callAWS(ctx, "DeleteRolePolicy", func(ctx context.Context) error {
			return stscreds.DeleteRolePolicy(ctx, e.iam, roleARN, name)
		})
	}
	return e.callAWS(ctx, "PutRolePolicy", func(ctx context.Context) error {
		return stscreds.PutRolePolicy(ctx, e.iam, roleARN, name, doc)
	})
}

// leaseSession is what a creds/ lease of a deny_session role keeps.
type leaseSession struct {
	roleARN, assumedRoleID string
	issued, expires        time.Time // issued: just before STS was asked
	// issuedBy: AWS issued the session no later than this, the lease's
	// "minted", or, for a lease without it, the latest STS could have
	// answered the mint (within sts_timeout).
	issuedBy time.Time
}

// internalData is made once STS has answered, so "minted", now, is no
// earlier than the session's aws:TokenIssueTime (with the host's clock in
// step with AWS's, as the kill switch's denied_before assumes too).
func (l leaseSession) internalData() map[string]any {
	return map[string]any{
		"revoke_mode": revokeModeDenySession, "role_arn": l.roleARN, "assumed_role_id": l.assumedRoleID,
		"issued": l.issued.UTC().Format(time.RFC3339), "expires": l.expires.UTC().Format(time.RFC3339),
		"minted": time.Now().UTC().Format(time.RFC3339Nano),
	}
}

// parseLeaseSession reads a lease's internal data; ok is false for a lease
// minted without deny_session.
func parseLeaseSession(data map[string]any) (leaseSession, bool, error) {
	if data["revoke_mode"] != revokeModeDenySession {
		return leaseSession{}, false, nil
	}
	str := func(k string) string { v, _ := data[k].(string); return v }
	l := leaseSession{roleARN: str("role_arn"), assumedRoleID: str("assumed_role_id")}
	var err1, err2 error
	l.issued, err1 = time.Parse(time.RFC3339, str("issued"))
	l.expires, err2 = time.Parse(time.RFC3339, str("expires"))
	if err1 != nil || err2 != nil || !roleARNRe.MatchString(l.roleARN) || !assumedRoleIDRe.MatchString(l.assumedRoleID) {
		return l, true, fmt.Errorf("the lease's session data is not readable; it cannot be revoked in AWS")
	}
	l.issuedBy = l.issued.Add(maxSTSTimeout + time.Second)
	if minted, err := time.Parse(time.RFC3339Nano, str("minted")); err == nil && !minted.Before(l.issued) && minted.Before(l.issuedBy) {
		l.issuedBy = minted
	}
	return l, true, nil
}

// revokeCreds is the creds/ lease's Revoke: for a deny_session lease whose
// session still lives, the session is denied in AWS, or an error returned
// so that Vault tries again; other leases are only forgotten.
func (b *backend) revokeCreds(ctx context.Context, req *logical.Request) error {
	if req.Secret == nil {
		return nil
	}
	l, ok, err := parseLeaseSession(req.Secret.InternalData)
	if err != nil || !ok {
		return err
	}
	if time.Until(l.expires) <= expiryMargin {
		return nil // expired or about to: AWS refuses it already or within seconds
	}
	err = b.updateRevocation(ctx, req.Storage, l.roleARN, func(rec *revocationRecord) {
		if !slices.ContainsFunc(rec.Sessions, func(s revokedSession) bool { return s.ID == l.assumedRoleID }) {
			rec.Sessions = append(rec.Sessions, revokedSession{ID: l.assumedRoleID, Expires: l.expires, IssuedBy: l.issuedBy})
		}
	})
	var quota *policyQuotaError
	if errors.As(err, &quota) {
		quota.role = "<name>"
		if name, _ := req.Secret.InternalData["role"].(string); roleNameRe.MatchString(name) {
			quota.role = name
		}
	}
	return err
}

// pruneRevocations, from the periodic function, rebuilds the policies
// that have expired entries; a failure is logged and retried next time.
func (b *backend) pruneRevocations(ctx context.Context, s logical.Storage) {
	keys, err := s.List(ctx, revocationPrefix)
	if err != nil {
		b.Logger().Warn("revocation: cannot list the revoked sessions", "error", err)
		return
	}
	now := time.Now()
	for _, k := range keys {
		entry, err := s.Get(ctx, revocationPrefix+k)
		var rec revocationRecord
		if err != nil || entry == nil || entry.DecodeJSON(&rec) != nil {
			continue
		}
		if !rec.prune(now) {
			continue
		}
		if err := b.updateRevocation(ctx, s, rec.RoleARN, func(*revocationRecord) {}); err != nil {
			b.Logger().Warn("revocation: cannot prune expired sessions", "error", err)
		}
	}
}

// checkRevocable: deny_session writes the target roles' policies, which
// lets the key's holder grant those roles anything; it is allowed only on
// roles a permissions boundary caps, asked of IAM.
func (b *backend) checkRevocable(ctx context.Context, s logical.Storage, role *roleEntry) error {
	if role.RevokeMode != revokeModeDenySession {
		return nil
	}
	field := "role_arns"
	if len(role.RoleChain) > 0 {
		field = "role_chain"
	}
	return b.withEngine(ctx, s, func(e *engine) error {
		for i, arn := range role.sessionRoleARNs() {
			if field == "role_chain" {
				i = len(role.RoleChain) - 1
			}
			var boundary string
			err := e.callAWS(ctx, "GetRole", func(ctx context.Context) (err error) {
				boundary, err = stscreds.PermissionsBoundary(ctx, e.iam, arn)
				return err
			})
			if err != nil {
				return err
			}
			if boundary == "" {
				return badInput("revoke_mode: deny_session needs a permissions boundary on every target role, and %s item %d has none (see docs/revocation.md)", field, i+1)
			}
		}
		return nil
	})
}
