package awshmac

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// lastCall is the peer's record of the last request of an action.
func lastCall(t *testing.T, e *testEnv, action string) map[string][]string {
	t.Helper()
	calls := e.peer.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Action == action {
			return calls[i].Params
		}
	}
	t.Fatalf("the peer saw no %s", action)
	return nil
}

func tagsOf(params map[string][]string) map[string]string {
	tags := map[string]string{}
	for i := 1; i <= 50; i++ {
		k := params["Tags.member."+itoa(i)+".Key"]
		if len(k) == 0 {
			break
		}
		tags[k[0]] = params["Tags.member."+itoa(i)+".Value"][0]
	}
	return tags
}

func itoa(i int) string { return strconv.Itoa(i) }

func (e *testEnv) asCaller(t *testing.T, path, entityID string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	var op logical.Operation = logical.ReadOperation
	if data != nil {
		op = logical.UpdateOperation
	}
	return e.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage,
		DisplayName: "userpass-alice", EntityID: entityID, ID: "req-0001"})
}

// Session names, tags and source identity come from the caller's entity.
func TestSessionIdentityFromCaller(t *testing.T) {
	e := newTestEnv(t)
	e.sys.EntityVal = &logical.Entity{ID: "ent-1234", Name: "alice", Metadata: map[string]string{"team": "platform"},
		Aliases: []*logical.Alias{{MountAccessor: "auth_userpass_1", Name: "alice.u"}}}
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN,
		"role_session_name_template": "{{identity.entity.name}}-{{random}}",
		"source_identity_template":   "{{identity.entity.aliases.auth_userpass_1.name}}",
		"session_tags":               []any{"team={{identity.entity.metadata.team}}", "env=prod"}, "audit_session_tags": true})
	resp, err := e.asCaller(t, "creds/deploy", "ent-1234", nil)
	if err != nil || resp.IsError() {
		t.Fatal(err, resp)
	}
	p := lastCall(t, e, "AssumeRole")
	if name := p["RoleSessionName"][0]; !strings.HasPrefix(name, "alice-") || len(name) != len("alice-")+8 {
		t.Fatalf("RoleSessionName %q", name)
	}
	if !strings.Contains(resp.Data["arn"].(string), "assumed-role/deploy/alice-") {
		t.Fatalf("arn %v", resp.Data["arn"])
	}
	if got := p["SourceIdentity"]; len(got) != 1 || got[0] != "alice.u" {
		t.Fatalf("SourceIdentity %v", got)
	}
	tags := tagsOf(p)
	want := map[string]string{"team": "platform", "env": "prod", "vault-request-id": "req-0001", "vault-entity-id": "ent-1234"}
	for k, v := range want {
		if tags[k] != v {
			t.Fatalf("tags %v, want %v", tags, want)
		}
	}

	// A caller without an entity cannot fill the templates: 400.
	resp, err = e.asCaller(t, "creds/deploy", "", nil)
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "entity") {
		t.Fatalf("no entity: %v %v", resp, err)
	}
	// Nor choose a name.
	resp, err = e.asCaller(t, "creds/deploy", "ent-1234", map[string]any{"role_session_name": "ops-admin"})
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "role_session_name") {
		t.Fatalf("chosen name: %v %v", resp, err)
	}
	// An entity name STS cannot take is refused, not mangled.
	e.sys.EntityVal.Name = "alice smith"
	resp, err = e.asCaller(t, "creds/deploy", "ent-1234", nil)
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "role_session_name_template") {
		t.Fatalf("unusable name: %v %v", resp, err)
	}
}

// Without templates the default name comes from the caller and cannot be
// chosen; allowed_session_names lets a caller choose within globs, for
// federation_token too.
func TestSessionNameChoice(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN})
	e.mustWrite(t, "roles/ci", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "allowed_session_names": "ci-*"})
	e.mustWrite(t, "roles/fed", map[string]any{"credential_type": "federation_token", "allowed_session_names": "app-?"})
	if resp, err := e.asCaller(t, "creds/deploy", "", nil); err != nil || resp.IsError() {
		t.Fatal(err, resp)
	}
	if name := lastCall(t, e, "AssumeRole")["RoleSessionName"][0]; !strings.HasPrefix(name, "userpass-alice-") {
		t.Fatalf("default name %q", name)
	}
	for _, tc := range []struct {
		path, name string
		ok         bool
	}{
		{"creds/deploy", "ops-admin", false},
		{"creds/ci", "ci-42", true},
		{"creds/ci", "ops-admin", false},
		{"creds/fed", "app-1", true},
		{"creds/fed", "ops-admin", false},
	} {
		resp, err := e.asCaller(t, tc.path, "", map[string]any{"role_session_name": tc.name})
		if ok := err == nil && resp != nil && !resp.IsError(); ok != tc.ok {
			t.Fatalf("%s as %s: %v %v", tc.path, tc.name, resp, err)
		}
	}
}

// Credentials never outlive Vault's max lease TTL for the mount.
func TestLifetimeBoundedByVault(t *testing.T) {
	e := newTestEnv(t)
	e.sys.MaxLeaseTTLVal = 30 * time.Minute
	e.configure(t)
	e.mustWrite(t, "roles/s", map[string]any{"credential_type": "session_token", "default_sts_ttl": "2h", "max_sts_ttl": "6h"})
	resp, err := e.request(t, logical.UpdateOperation, "creds/s", map[string]any{"ttl": "6h"})
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "max lease TTL") {
		t.Fatalf("6h under a 30m mount: %v %v", resp, err)
	}
	resp, err = e.request(t, logical.ReadOperation, "creds/s", nil)
	if err != nil || resp.IsError() || resp.Secret.TTL > 30*time.Minute {
		t.Fatalf("default under a 30m mount: %v %v", resp, err)
	}
	// Independently of the lease: what STS was asked for, and what it gave.
	calls := e.peer.Calls()
	if last := calls[len(calls)-1]; last.Action != "GetSessionToken" || last.Params["DurationSeconds"][0] != "1800" {
		t.Fatalf("STS was asked for %v", last.Params["DurationSeconds"])
	}
	expires, err := time.Parse(time.RFC3339, resp.Data["expiration"].(string))
	if err != nil || expires.After(time.Now().Add(30*time.Minute+time.Minute)) {
		t.Fatalf("the STS credentials expire at %v (%v), past the mount's 30m", expires, err)
	}
}

// Names are exact: a policy on creds/deploy is not bypassed by creds/DEPLOY.
func TestRoleNamesAreExact(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "session_token", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*"})
	for _, path := range []string{"creds/DEPLOY", "creds/Deploy", "sign/DEPLOY", "roles/DEPLOY"} {
		var op logical.Operation = logical.ReadOperation
		data := map[string]any(nil)
		if strings.HasPrefix(path, "sign/") {
			op, data = logical.UpdateOperation, map[string]any{"url": "https://s3.amazonaws.com/b/k", "service": "s3"}
		}
		resp, err := e.request(t, op, path, data)
		if path == "roles/DEPLOY" {
			if resp != nil || err != nil {
				t.Fatalf("roles/DEPLOY read %v %v", resp, err)
			}
			continue
		}
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "name") {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
	}
	e.mustWrite(t, "roles/Mixed", map[string]any{"credential_type": "session_token"})
	list, _ := e.request(t, logical.ListOperation, "roles/", nil)
	if keys := list.Data["keys"].([]string); !strings.Contains(strings.Join(keys, ","), "Mixed") {
		t.Fatalf("role names lower-cased: %v", keys)
	}
}

// A sign-only role signs and mints nothing.
func TestSignOnlyRole(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*"})
	if resp, _ := e.request(t, logical.ReadOperation, "roles/signer", nil); resp.Data["credential_type"] != "none" {
		t.Fatalf("credential_type %v", resp.Data["credential_type"])
	}
	resp, err := e.request(t, logical.ReadOperation, "creds/signer", nil)
	if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "only signs") {
		t.Fatalf("creds on a sign-only role: %v %v", resp, err)
	}
	e.mustWrite(t, "sign/signer", map[string]any{"url": "https://s3.amazonaws.com/b/k", "service": "s3"})
}

// sign_with=session signs as the role's own session: the peer sees the
// assumed role, the session token is signed, and one session serves many
// signatures.
func TestSignWithSession(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "sign_with": "session",
		"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	url := e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	for i := range 3 {
		resp := e.mustWrite(t, "sign/deploy", map[string]any{"url": url, "service": "sts"})
		headers := resp.Data["headers"].(map[string]any)
		if headers["X-Amz-Security-Token"] == nil || !strings.Contains(resp.Data["signed_headers"].(string), "x-amz-security-token") {
			t.Fatalf("no session token signed: %v", resp.Data)
		}
		req, _ := http.NewRequest(http.MethodGet, resp.Data["url"].(string), nil)
		for k, v := range headers {
			req.Header.Set(k, v.(string))
		}
		got, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 4096)
		n, _ := got.Body.Read(body)
		got.Body.Close()
		if got.StatusCode != http.StatusOK || !strings.Contains(string(body[:n]), "assumed-role/deploy/vault-sign-deploy") {
			t.Fatalf("round %d: the peer answered %d: %s", i, got.StatusCode, body[:n])
		}
	}
	assumed := 0
	for _, c := range e.peer.Calls() {
		if c.Action == "AssumeRole" {
			assumed++
		}
	}
	if assumed != 1 {
		t.Fatalf("%d AssumeRole calls for three signatures, want 1", assumed)
	}
	// A presigned URL carries the session too.
	resp := e.mustWrite(t, "sign/deploy", map[string]any{"url": url, "service": "sts", "presign": true})
	if !strings.Contains(resp.Data["url"].(string), "X-Amz-Security-Token=") {
		t.Fatalf("presigned URL without the session token: %v", resp.Data["url"])
	}
}
