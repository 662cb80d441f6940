package awshmac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

const (
	boundedARN  = "arn:aws:iam::123456789012:role/bounded"
	boundaryARN = "arn:aws:iam::123456789012:policy/vault-boundary"
)

// revocationEnv is a configured mount with a deny_session role on a role
// that has a permissions boundary.
func revocationEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	e.peer.AddRole(ststest.Role{ARN: boundedARN, PermissionsBoundary: boundaryARN, MaxSessionDuration: 12 * time.Hour})
	e.configure(t)
	e.mustWrite(t, "roles/app", map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "revoke_mode": "deny_session"})
	return e
}

// mintLease reads creds/<role> and returns the response, lease and all.
func (e *testEnv) mintLease(t *testing.T, role string) *logical.Response {
	t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "creds/" + role, Storage: e.storage, DisplayName: "token-app"})
	if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
		t.Fatalf("creds/%s: %v %v", role, err, resp)
	}
	return resp
}

// revokeLease is what Vault does on `vault lease revoke`.
func (e *testEnv) revokeLease(lease *logical.Response) error {
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RevokeOperation, Path: "creds/x", Secret: lease.Secret, Storage: e.storage})
	return err
}

// useSession makes an IAM call signed with the lease's credentials; nil
// when the peer accepts it.
func useSession(peer *ststest.Server, lease *logical.Response) error {
	d := lease.Data
	client := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(peer.URL), HTTPClient: testHTTPClient, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(d["access_key"].(string), d["secret_key"].(string), d["session_token"].(string))})
	_, err := client.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("bounded")})
	return err
}

func denied(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDenied"
}

// denyPolicy is the mount's deny policy on a role as the peer holds it.
func (e *testEnv) denyPolicy(t *testing.T, roleARN string) (ids []string, present bool) {
	t.Helper()
	id, err := e.b.mountID(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := e.peer.RolePolicy(roleARN, policyNameFor(id))
	if !ok {
		return nil, false
	}
	var p struct {
		Statement []struct {
			Sid       string
			Condition map[string]map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Statement {
		if st.Sid == "RevokedSessions" {
			_ = json.Unmarshal(st.Condition["StringEquals"]["aws:userid"], &ids)
		}
	}
	return ids, true
}

func (e *testEnv) storedRevocation(t *testing.T, roleARN string) *revocationRecord {
	t.Helper()
	rec, err := e.b.readRevocation(context.Background(), e.storage, roleARN)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// Revoking one of two leases denies its session in AWS and only it; the
// lease keeps the role, the session's aws:userid and its times; revoking
// it again changes nothing.
func TestRevokeDeniesOneSession(t *testing.T) {
	e := revocationEnv(t)
	a, b := e.mintLease(t, "app"), e.mintLease(t, "app")
	if err := useSession(e.peer, a); err != nil {
		t.Fatal(err)
	}
	if err := useSession(e.peer, b); err != nil {
		t.Fatal(err)
	}
	in := a.Secret.InternalData
	if in["role_arn"] != boundedARN || !assumedRoleIDRe.MatchString(in["assumed_role_id"].(string)) || in["issued"] == "" || in["expires"] == "" {
		t.Fatalf("lease data %v", in)
	}
	if err := e.revokeLease(a); err != nil {
		t.Fatal(err)
	}
	if err := useSession(e.peer, a); !denied(err) {
		t.Fatalf("revoked session: %v", err)
	}
	if err := useSession(e.peer, b); err != nil {
		t.Fatalf("the other session: %v", err)
	}
	if err := e.revokeLease(a); err != nil {
		t.Fatal(err)
	}
	ids, _ := e.denyPolicy(t, boundedARN)
	if len(ids) != 1 || ids[0] != in["assumed_role_id"] || len(e.storedRevocation(t, boundedARN).Sessions) != 1 {
		t.Fatalf("policy denies %v", ids)
	}
}

// Fifty revocations on one role from eight callers leave fifty entries, in
// storage and in the policy IAM holds.
func TestRevokeConcurrent(t *testing.T) {
	e := revocationEnv(t)
	leases := make(chan *logical.Response, 50)
	want := map[string]bool{}
	for i := 0; i < 50; i++ {
		l := e.mintLease(t, "app")
		want[l.Secret.InternalData["assumed_role_id"].(string)] = true
		leases <- l
	}
	close(leases)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range leases {
				errs <- e.revokeLease(l)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := e.denyPolicy(t, boundedARN)
	stored := e.storedRevocation(t, boundedARN).Sessions
	if len(want) != 50 || len(ids) != 50 || len(stored) != 50 {
		t.Fatalf("%d sessions, policy %d, storage %d", len(want), len(ids), len(stored))
	}
	for _, id := range ids {
		if !want[id] {
			t.Fatalf("policy denies %s, never revoked", id)
		}
	}
}

// Near IAM's quota the revocation fails, Vault is told, storage keeps what
// IAM enforces, and the session still works until revoked for real.
func TestRevokeQuota(t *testing.T) {
	e := revocationEnv(t)
	a := e.mintLease(t, "app")
	filler := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::%s"}]}`, strings.Repeat("b", 10100))
	putAs(t, e, "bounded", "filler", filler)
	err := e.revokeLease(a)
	if err == nil || !strings.Contains(err.Error(), "LimitExceeded") {
		t.Fatalf("revocation over the quota: %v", err)
	}
	if rec := e.storedRevocation(t, boundedARN); len(rec.Sessions) != 0 {
		t.Fatalf("storage records a revocation IAM refused: %v", rec.Sessions)
	}
	if err := useSession(e.peer, a); err != nil {
		t.Fatalf("session: %v", err)
	}
	// The plugin's own document never exceeds the quota either.
	rec := &revocationRecord{RoleARN: boundedARN}
	for i := 0; i < 300; i++ {
		rec.Sessions = append(rec.Sessions, revokedSession{ID: fmt.Sprintf("AROAEXAMPLEEXAMPLE12:app-%040d", i), Expires: time.Now().Add(time.Hour)})
	}
	if _, err := rec.policy("m"); err == nil {
		t.Fatal("a policy over the quota was built")
	}
}

// putAs writes an inline policy on a role as an administrator would.
func putAs(t *testing.T, e *testEnv, role, name, doc string) {
	t.Helper()
	id, secret := e.peer.AddUser("admin")
	client := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.peer.URL), HTTPClient: testHTTPClient,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	if _, err := client.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
}

// Entries past their session's expiry are pruned by the periodic function
// and the policy deleted once empty; an expired lease's revocation asks
// nothing of AWS.
func TestRevokePrune(t *testing.T) {
	e := revocationEnv(t)
	a, b := e.mintLease(t, "app"), e.mintLease(t, "app")
	for _, l := range []*logical.Response{a, b} {
		if err := e.revokeLease(l); err != nil {
			t.Fatal(err)
		}
	}
	// Time passes for a's session: its recorded expiry is moved to the past.
	rec := e.storedRevocation(t, boundedARN)
	rec.Sessions[0].Expires = time.Now().Add(-time.Second)
	gone := rec.Sessions[0].ID
	if err := e.b.writeRevocation(context.Background(), e.storage, rec); err != nil {
		t.Fatal(err)
	}
	e.b.pruneRevocations(context.Background(), e.storage)
	ids, ok := e.denyPolicy(t, boundedARN)
	if !ok || len(ids) != 1 || ids[0] == gone {
		t.Fatalf("after pruning one: %v %v", ids, ok)
	}
	rec = e.storedRevocation(t, boundedARN)
	rec.Sessions[0].Expires = time.Now().Add(-time.Second)
	if err := e.b.writeRevocation(context.Background(), e.storage, rec); err != nil {
		t.Fatal(err)
	}
	if err := e.b.periodic(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.denyPolicy(t, boundedARN); ok || !e.storedRevocation(t, boundedARN).empty() {
		t.Fatal("the empty policy or record is still there")
	}
	// Vault revokes a lease as it expires, a second before its session ends.
	for _, left := range []time.Duration{-time.Minute, time.Second} {
		ending := e.mintLease(t, "app")
		ending.Secret.InternalData["expires"] = time.Now().Add(left).UTC().Format(time.RFC3339)
		calls := len(e.peer.Calls())
		if err := e.revokeLease(ending); err != nil || len(e.peer.Calls()) != calls {
			t.Fatalf("revoking a lease %v from its end: %v, %d calls", left, err, len(e.peer.Calls())-calls)
		}
	}
}

// deny_session is refused where it cannot be safe or cannot work, naming
// the field, and nothing is written.
func TestRevokeModeRefused(t *testing.T) {
	e := revocationEnv(t)
	e.peer.AddRole(ststest.Role{ARN: "arn:aws:iam::123456789012:role/b2", PermissionsBoundary: boundaryARN})
	cases := []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "revoke_mode": "deny_session"}, "revoke_mode"},
		{map[string]any{"credential_type": "federation_token", "revoke_mode": "deny_session"}, "revoke_mode"},
		{map[string]any{"credential_type": "session_token", "revoke_mode": "deny_session"}, "revoke_mode"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "revoke_mode": "kill"}, "revoke_mode"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "revoke_mode": "deny_session", "role_session_name_template": "{{display_name}}"}, "role_session_name_template"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "revoke_mode": "deny_session", "allowed_session_names": "app-*"}, "allowed_session_names"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "revoke_mode": "deny_session", "session_tags": "vault-aws-hmac-mount=x"}, "session_tags"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "role_chain": testRoleARN, "revoke_mode": "deny_session"}, "revoke_mode"},
		{map[string]any{"credential_type": "session_token", "role_chain": testRoleARN}, "role_chain"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "role_chain": "arn:aws:iam::1:role/x"}, "role_chain"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "role_chain": testRoleARN + "#a b"}, "role_chain"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "role_chain": testRoleARN, "max_sts_ttl": "2h"}, "max_sts_ttl"},
	}
	for i, c := range cases {
		before := len(storageKeys(t, e.storage))
		resp, err := e.request(t, logical.UpdateOperation, fmt.Sprintf("roles/r%d", i), c.data)
		if status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(errText(resp, err), c.field) {
			t.Errorf("case %d: %d %q, want 400 naming %s", i, status(resp, err), errText(resp, err), c.field)
		}
		if after := len(storageKeys(t, e.storage)); after != before {
			t.Errorf("case %d wrote storage", i)
		}
	}
	e.mustWrite(t, "roles/ok", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "role_chain": "arn:aws:iam::123456789012:role/b2", "revoke_mode": "deny_session", "role_session_name_template": "app-{{random}}"})
}

// The documents the plugin writes pass the peer's strict IAM grammar and
// read back through GetRolePolicy (URL-encoded, as IAM answers) exactly as
// built from storage. The revoked session is minted after the kill switch,
// which would otherwise cover it and take its entry's place.
func TestDenyPolicyReadBack(t *testing.T) {
	e := revocationEnv(t)
	resp := e.mustWrite(t, "roles/app/revoke-sessions", nil)
	before, err := time.Parse(time.RFC3339, resp.Data["denied_before"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for !time.Now().After(before) {
		time.Sleep(50 * time.Millisecond) // TokenIssueTime has whole seconds
	}
	if err := e.revokeLease(e.mintLease(t, "app")); err != nil {
		t.Fatal(err)
	}
	mountID, err := e.b.mountID(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.storedRevocation(t, boundedARN).policy(mountID)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := stscreds.RolePolicy(context.Background(), e.engine(t).iam, boundedARN, policyNameFor(mountID))
	if err != nil || !found || got != want || !strings.Contains(got, `"RevokedSessions"`) || !strings.Contains(got, `"RevokedBefore"`) {
		t.Fatalf("read back %q (found %v, %v), want %q", got, found, err, want)
	}
}

// A caller who may only read creds/ fills the deny policy by minting
// long-lived sessions and revoking them until IAM's quota refuses. Another
// lease's revocation then fails, saying the kill switch is the way out; the
// kill switch fits, because it takes the place of the entries of the
// sessions it covers: the victim's session (minted before) is denied by the
// peer, a session minted after works, and storage and the peer's policy
// agree. Revoking the victim's lease then succeeds without an entry.
func TestKillSwitchFitsAfterPolicyFilled(t *testing.T) {
	e := revocationEnv(t)
	victim := e.mintLease(t, "app")
	var fillErr error
	filled := 0
	for ; filled < 400 && fillErr == nil; filled++ {
		fillErr = e.revokeLease(e.mintLease(t, "app"))
	}
	if fillErr == nil || filled < 100 {
		t.Fatalf("after %d revocations the policy is not full: %v", filled, fillErr)
	}
	err := e.revokeLease(victim)
	if err == nil || !strings.Contains(err.Error(), "quota") || !strings.Contains(err.Error(), "roles/app/revoke-sessions denies every session of this mount on that role and always fits") {
		t.Fatalf("revocation on a full policy: %v", err)
	}
	if err := useSession(e.peer, victim); err != nil {
		t.Fatalf("the victim's session before the kill switch: %v", err)
	}

	resp := e.mustWrite(t, "roles/app/revoke-sessions", nil)
	before, err := time.Parse(time.RFC3339, resp.Data["denied_before"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if err := useSession(e.peer, victim); !denied(err) {
		t.Fatalf("the victim's session after the kill switch: %v", err)
	}
	e.policyMatchesStorage(t)
	if n := len(e.storedRevocation(t, boundedARN).Sessions); n > 5 {
		t.Fatalf("%d per-session entries left beside the kill switch statement", n)
	}
	if err := e.revokeLease(victim); err != nil {
		t.Fatalf("revoking the victim's lease once the kill switch covers it: %v", err)
	}
	e.policyMatchesStorage(t)
	for !time.Now().After(before) {
		time.Sleep(50 * time.Millisecond) // TokenIssueTime has whole seconds
	}
	if err := useSession(e.peer, e.mintLease(t, "app")); err != nil {
		t.Fatalf("a session minted after the kill switch: %v", err)
	}
}

// policyMatchesStorage: the policy the peer holds is the one the stored
// record builds.
func (e *testEnv) policyMatchesStorage(t *testing.T) {
	t.Helper()
	mountID, err := e.b.mountID(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.storedRevocation(t, boundedARN).policy(mountID)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := stscreds.RolePolicy(context.Background(), e.engine(t).iam, boundedARN, policyNameFor(mountID))
	if err != nil || !found || got != want {
		t.Fatalf("the peer holds %q (found %v, %v), storage builds %q", got, found, err, want)
	}
}

// Only a session the kill switch surely covers loses its entry: one whose
// issue time is unknown, or not before denied_before, keeps it.
func TestKillSwitchKeepsUncoveredEntries(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	rec := &revocationRecord{RoleARN: boundedARN, DeniedBefore: now, DeniedUntil: now.Add(12 * time.Hour), Sessions: []revokedSession{
		{ID: "AROAEXAMPLEEXAMPLE12:covered", Expires: now.Add(time.Hour), IssuedBy: now.Add(-time.Second)},
		{ID: "AROAEXAMPLEEXAMPLE12:unknown", Expires: now.Add(time.Hour)},
		{ID: "AROAEXAMPLEEXAMPLE12:at-denied-before", Expires: now.Add(time.Hour), IssuedBy: now},
	}}
	if !rec.prune(time.Now()) || len(rec.Sessions) != 2 || rec.Sessions[0].ID != "AROAEXAMPLEEXAMPLE12:unknown" {
		t.Fatalf("after pruning: %v", rec.Sessions)
	}
	// A lease made before leases said when STS answered: the latest it could have.
	l, ok, err := parseLeaseSession(map[string]any{"revoke_mode": revokeModeDenySession, "role_arn": boundedARN,
		"assumed_role_id": "AROAEXAMPLEEXAMPLE12:app-1", "issued": now.Format(time.RFC3339), "expires": now.Add(time.Hour).Format(time.RFC3339)})
	if err != nil || !ok || !l.issuedBy.Equal(now.Add(maxSTSTimeout+time.Second)) {
		t.Fatalf("issued by %v (%v %v)", l.issuedBy, ok, err)
	}
}
