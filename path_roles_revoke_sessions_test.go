package awshmac

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

// The kill switch denies every session this mount minted for the role
// before now, not sessions minted elsewhere nor later ones.
func TestRevokeSessionsKillSwitch(t *testing.T) {
	e := revocationEnv(t)
	a, b := e.mintLease(t, "app"), e.mintLease(t, "app")
	e.mustWrite(t, "roles/plain", map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN})
	elsewhere := e.mintLease(t, "plain") // untagged: as if minted by another tool
	resp := e.mustWrite(t, "roles/app/revoke-sessions", nil)
	before, err := time.Parse(time.RFC3339, resp.Data["denied_before"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*logical.Response{a, b} {
		if err := useSession(e.peer, l); !denied(err) {
			t.Fatalf("a session minted before the kill switch: %v", err)
		}
	}
	if err := useSession(e.peer, elsewhere); err != nil {
		t.Fatalf("a session without the mount's tag: %v", err)
	}
	for !time.Now().After(before) {
		time.Sleep(50 * time.Millisecond) // TokenIssueTime has whole seconds
	}
	if err := useSession(e.peer, e.mintLease(t, "app")); err != nil {
		t.Fatalf("a session minted after the kill switch: %v", err)
	}
	resp, err = e.request(t, logical.UpdateOperation, "roles/plain/revoke-sessions", nil)
	if status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(errText(resp, err), "revoke_mode") {
		t.Fatalf("kill switch on a role without deny_session: %v %v", resp, err)
	}
}

// The kill switch on one Vault role denies the sessions every deny_session
// role of this mount minted on the same IAM role, and nothing on another
// IAM role, nor sessions minted while a role had revoke_mode none.
func TestRevokeSessionsCoversTheMountsOtherRoles(t *testing.T) {
	e := revocationEnv(t)
	const otherARN = "arn:aws:iam::123456789012:role/bounded2"
	e.peer.AddRole(ststest.Role{ARN: otherARN, PermissionsBoundary: boundaryARN, MaxSessionDuration: 12 * time.Hour})
	e.mustWrite(t, "roles/sibling", map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN, "revoke_mode": "deny_session"})
	e.mustWrite(t, "roles/other", map[string]any{"credential_type": "assumed_role", "role_arns": otherARN, "revoke_mode": "deny_session"})
	e.mustWrite(t, "roles/later", map[string]any{"credential_type": "assumed_role", "role_arns": boundedARN})
	sibling, other, untagged := e.mintLease(t, "sibling"), e.mintLease(t, "other"), e.mintLease(t, "later")
	e.mustWrite(t, "roles/later", map[string]any{"revoke_mode": "deny_session"})

	e.mustWrite(t, "roles/app/revoke-sessions", nil)
	if err := useSession(e.peer, sibling); !denied(err) {
		t.Fatalf("another Vault role's session on the same IAM role: %v", err)
	}
	if err := useSession(e.peer, other); err != nil {
		t.Fatalf("a session on another IAM role: %v", err)
	}
	if err := useSession(e.peer, untagged); err != nil {
		t.Fatalf("a session minted while its role had revoke_mode none: %v", err)
	}
}
