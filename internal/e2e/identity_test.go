package e2e

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// lastAssumeRole is what the STS peer received in the last AssumeRole.
func (w *world) lastAssumeRole(t *testing.T) (map[string][]string, int) {
	t.Helper()
	calls := w.peer.Calls()
	count := 0
	var last map[string][]string
	for _, c := range calls {
		if c.Action == "AssumeRole" {
			count++
			last = c.Params
		}
	}
	return last, count
}

func tagsOf(p map[string][]string) map[string]string {
	tags := map[string]string{}
	for i := 1; len(p["Tags.member."+strconv.Itoa(i)+".Key"]) > 0; i++ {
		tags[p["Tags.member."+strconv.Itoa(i)+".Key"][0]] = p["Tags.member."+strconv.Itoa(i)+".Value"][0]
	}
	return tags
}

// runIdentity logs in as a userpass user with an entity and checks what
// the STS peer receives; a caller without an entity; a policy that denies
// creds/deploy against creds/DEPLOY; and a sign_with=session role.
func (w *world) runIdentity(t *testing.T) {
	c := w.vault.Client
	alice, entityID := w.identityAlice(t)

	if _, err := alice.Logical().Read(mount + "/creds/ident"); err != nil {
		t.Fatal(err)
	}
	p, _ := w.lastAssumeRole(t)
	tags := tagsOf(p)
	switch {
	case !strings.HasPrefix(p["RoleSessionName"][0], "alice-"):
		t.Fatalf("RoleSessionName %v", p["RoleSessionName"])
	case len(p["SourceIdentity"]) != 1 || p["SourceIdentity"][0] != "alice":
		t.Fatalf("SourceIdentity %v", p["SourceIdentity"])
	case tags["team"] != "platform" || tags["vault-entity-id"] != entityID || tags["vault-request-id"] == "":
		t.Fatalf("session tags %v", tags)
	}

	// Without an entity (the root token) the templates cannot be filled;
	// a role without templates names the session after the caller.
	if _, err := c.Logical().Read(mount + "/creds/ident"); !isStatus(err, http.StatusBadRequest) {
		t.Fatalf("templated role without an entity: %v", err)
	}
	if _, err := c.Logical().Read(mount + "/creds/deploy"); err != nil {
		t.Fatal(err)
	}
	if p, _ := w.lastAssumeRole(t); !strings.HasPrefix(p["RoleSessionName"][0], "root-") {
		t.Fatalf("default session name %v", p["RoleSessionName"])
	}

	// A policy denying creds/deploy is not bypassed through creds/DEPLOY.
	_, before := w.lastAssumeRole(t)
	if _, err := alice.Logical().Read(mount + "/creds/deploy"); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("denied path: %v", err)
	}
	if _, err := alice.Logical().Read(mount + "/creds/DEPLOY"); !isStatus(err, http.StatusBadRequest) {
		t.Fatalf("creds/DEPLOY: %v", err)
	}
	if _, after := w.lastAssumeRole(t); after != before {
		t.Fatal("creds/DEPLOY minted credentials")
	}
	w.runSignWithSession(t)
}

// identityAlice: userpass user alice, whose entity carries metadata, with a
// policy denying creds/deploy, and the templated role "ident"; it returns
// a client logged in as alice, whose token joins the secret forms.
func (w *world) identityAlice(t *testing.T) (*api.Client, string) {
	t.Helper()
	c := w.vault.Client
	w.cli(t, "auth", "enable", "userpass")
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	accessor := auths["userpass/"].Accessor
	policy := `path "` + mount + `/creds/*" { capabilities = ["read", "update"] }
path "` + mount + `/creds/deploy" { capabilities = ["deny"] }`
	if err := c.Sys().PutPolicy("apps", policy); err != nil {
		t.Fatal(err)
	}
	w.cli(t, "write", "auth/userpass/users/alice", "password=alice-pass-1", "token_policies=apps")
	ent, err := c.Logical().Write("identity/entity", map[string]any{"name": "alice", "metadata": map[string]any{"team": "platform"}})
	if err != nil {
		t.Fatal(err)
	}
	entityID := ent.Data["id"].(string)
	if _, err := c.Logical().Write("identity/entity-alias", map[string]any{"name": "alice", "canonical_id": entityID, "mount_accessor": accessor}); err != nil {
		t.Fatal(err)
	}
	w.cli(t, "write", mount+"/roles/ident", "credential_type=assumed_role", "role_arns="+roleARN,
		"role_session_name_template={{identity.entity.name}}-{{random}}", "session_tags=team={{identity.entity.metadata.team}}",
		"source_identity_template={{identity.entity.aliases."+accessor+".name}}", "audit_session_tags=true")

	login, err := c.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "alice-pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := c.Clone()
	alice.SetToken(login.Auth.ClientToken)
	w.secretForms = append(w.secretForms, login.Auth.ClientToken)
	return alice, entityID
}

// runSignWithSession: a sign_with=session role's signatures reach the STS
// peer as the role's session, and MinIO accepts them.
func (w *world) runSignWithSession(t *testing.T) {
	w.cli(t, "write", mount+"/roles/as-role", "credential_type=assumed_role", "role_arns="+roleARN, "sign_with=session",
		"allowed_services=sts,s3", "allowed_actions=sts:GetCallerIdentity,s3:*", "allowed_regions=us-east-1", "allowed_hosts=127.0.0.1")
	s, err := w.vault.Client.Logical().Write(mount+"/sign/as-role", map[string]any{"url": w.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"})
	if err != nil {
		t.Fatal(err)
	}
	if code, out := w.sendSigned(t, s); code != http.StatusOK || !strings.Contains(out, "assumed-role/deploy/vault-sign-as-role") {
		t.Fatalf("the peer answered %d: %s", code, out)
	}
	w.cli(t, "write", mount+"/config", "sts_endpoint="+w.minio.Endpoint, "skip_verification=true")
	defer w.cli(t, "write", mount+"/config", "sts_endpoint="+w.peer.URL)
	s, err = w.vault.Client.Logical().Write(mount+"/sign/as-role", map[string]any{"url": w.minio.Endpoint + "/" + w.minio.Bucket + "/?list-type=2", "service": "s3"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["headers"].(map[string]any)["X-Amz-Security-Token"] == nil {
		t.Fatal("sign_with=session signed without the session token")
	}
	if code, out := w.sendSigned(t, s); code != http.StatusOK || !strings.Contains(out, "ListBucketResult") {
		t.Fatalf("MinIO answered %d to the session-signed request: %s", code, out)
	}
}

func (w *world) sendSigned(t *testing.T, s *api.Secret) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.Data["url"].(string), nil)
	for k, v := range s.Data["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	return send(t, req)
}

func isStatus(err error, code int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}
