package awshmac

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

// A chain of two hops after role_arns: each hop is signed by the previous
// session, the external ID goes to its hop, the policy and tags to the
// last, whose ARN is returned with a lease of at most an hour.
func TestRoleChain(t *testing.T) {
	e := newTestEnv(t)
	hop2, hop3 := "arn:aws:iam::123456789012:role/hop2", "arn:aws:iam::123456789012:role/hop3"
	e.peer.AddRole(ststest.Role{ARN: hop2, ExternalID: "ext-2"})
	e.peer.AddRole(ststest.Role{ARN: hop3, MaxSessionDuration: 4 * time.Hour})
	e.configure(t)
	e.mustWrite(t, "roles/chain", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN,
		"role_chain": []string{hop2 + "#ext-2", hop3}, "session_tags": "team=ops", "policy_document": `{"Version":"2012-10-17","Statement":[]}`})
	read, err := e.request(t, logical.ReadOperation, "roles/chain", nil)
	if err != nil || read.Data["max_sts_ttl"] != int64(3600) {
		t.Fatalf("max_sts_ttl defaults to the chained limit: %v %v", read, err)
	}
	calls := len(e.peer.Calls())
	lease := e.mintLease(t, "chain")
	if arn := lease.Data["arn"].(string); !strings.HasPrefix(arn, "arn:aws:sts::123456789012:assumed-role/hop3/") {
		t.Fatalf("arn %s, want the last hop's session", arn)
	}
	if lease.Secret.TTL > time.Hour || lease.Secret.TTL < 59*time.Minute {
		t.Fatalf("lease %v, want at most an hour", lease.Secret.TTL)
	}
	hops := e.peer.Calls()[calls:]
	if len(hops) != 3 {
		t.Fatalf("%d calls, want 3 AssumeRole", len(hops))
	}
	for i, want := range []string{testRoleARN, hop2, hop3} {
		c := hops[i]
		p := url.Values(c.Params)
		if c.Action != "AssumeRole" || p.Get("RoleArn") != want {
			t.Fatalf("hop %d: %s %s", i, c.Action, p.Get("RoleArn"))
		}
		signedBySession := strings.HasPrefix(c.AccessKeyID, "ASIA")
		last := i == 2
		if signedBySession != (i > 0) || (p.Get("ExternalId") == "ext-2") != (i == 1) || p.Has("Tags.member.1.Key") != last || p.Has("Policy") != last {
			t.Fatalf("hop %d: signed by %s, params %v", i, c.AccessKeyID[:4], p)
		}
	}
	if got := callerIdentity(t, e.peer, lease.Data); !strings.Contains(got, "assumed-role/hop3/") {
		t.Fatalf("the credentials act as %s", got)
	}
	resp, err := e.request(t, logical.UpdateOperation, "creds/chain", map[string]any{"ttl": "2h"})
	if status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(errText(resp, err), "ttl") {
		t.Fatalf("2h on a chain: %v %v", resp, err)
	}
	e.mustWrite(t, "roles/chain", map[string]any{"role_chain": []string{hop2 + "#wrong", hop3}})
	resp, err = e.request(t, logical.ReadOperation, "creds/chain", nil)
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "AccessDenied") {
		t.Fatalf("a hop refused: %v %v", resp, err)
	}
}

// With deny_session, a chained lease's revocation denies the last hop's
// session, in the last role's policy: the role that carries the boundary.
func TestRoleChainRevoked(t *testing.T) {
	e := revocationEnv(t)
	e.mustWrite(t, "roles/chained", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN,
		"role_chain": boundedARN, "revoke_mode": "deny_session"})
	a, b := e.mintLease(t, "chained"), e.mintLease(t, "chained")
	if a.Secret.InternalData["role_arn"] != boundedARN {
		t.Fatalf("lease names %v, want the last hop", a.Secret.InternalData["role_arn"])
	}
	if err := e.revokeLease(a); err != nil {
		t.Fatal(err)
	}
	if err := useSession(e.peer, a); !denied(err) {
		t.Fatalf("revoked chained session: %v", err)
	}
	if err := useSession(e.peer, b); err != nil {
		t.Fatalf("the other chained session: %v", err)
	}
	if ids, _ := e.denyPolicy(t, boundedARN); len(ids) != 1 || ids[0] != a.Secret.InternalData["assumed_role_id"] {
		t.Fatalf("policy on the last role denies %v", ids)
	}
}
