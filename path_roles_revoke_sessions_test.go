package awshmac

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
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
