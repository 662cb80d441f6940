package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

const (
	revMount     = "aws-hmac-rev"
	revRoleARN   = "arn:aws:iam::123456789012:role/rev-target"
	openRoleARN  = "arn:aws:iam::123456789012:role/rev-unbounded"
	chainRoleARN = "arn:aws:iam::123456789012:role/rev-hop2"
	manyRoleARN  = "arn:aws:iam::123456789012:role/rev-many"
)

// revWorld is a Vault with the plugin on the transit store, and the STS
// peer: all revocation needs.
type revWorld struct {
	*world
	keyID, keySecret string
	admin            *iam.Client
}

// lease is one creds/ read through the CLI.
type lease struct {
	ID    string   `json:"lease_id"`
	TTL   int      `json:"lease_duration"`
	Creds stsCreds `json:"data"`
}

// TestRevocationEndToEnd: vault lease revoke on a deny_session lease makes
// the STS peer refuse that session and only it; revoke -prefix, expiry
// pruning, the quota refusal, the kill switch, a role without a
// permissions boundary refused, and a two-hop role chain.
func TestRevocationEndToEnd(t *testing.T) {
	if os.Getenv("VAULT_BIN") == "" && !testenv.InCI() {
		t.Skip("VAULT_BIN not set: run `make test`")
	}
	w := revSetup(t)
	t.Run("revoke-one", w.revokeOne)
	t.Run("revoke-prefix", w.revokePrefix)
	t.Run("quota", w.revokeQuota)
	t.Run("kill-switch", w.killSwitch)
	t.Run("no-boundary", w.noBoundary)
	t.Run("chain", w.chain)
	t.Run("concurrent", w.concurrent)
	t.Run("expiry", w.expiryPruned)
	w.noKeySecret(t)
}

func revSetup(t *testing.T) *revWorld {
	t.Helper()
	w := &revWorld{world: &world{}}
	w.peer = ststest.New()
	t.Cleanup(w.peer.Close)
	w.keyID, w.keySecret = w.peer.AddUser("vault")
	w.peer.AddRole(ststest.Role{ARN: revRoleARN, PermissionsBoundary: "arn:aws:iam::123456789012:policy/boundary", MaxSessionDuration: 12 * time.Hour})
	w.peer.AddRole(ststest.Role{ARN: openRoleARN})
	w.peer.AddRole(ststest.Role{ARN: chainRoleARN, MaxSessionDuration: 4 * time.Hour})
	w.peer.AddRole(ststest.Role{ARN: manyRoleARN, PermissionsBoundary: "arn:aws:iam::123456789012:policy/boundary"})
	adminID, adminSecret := w.peer.AddUser("admin")
	w.admin = iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.peer.URL),
		Credentials: credentials.NewStaticCredentialsProvider(adminID, adminSecret, "")})
	w.vault = testenv.StartVault(t, testenv.VaultOptions{FileStorage: true, Audit: true})
	w.vault.RegisterPlugin(t, pluginBinary, pluginName)
	w.cli(t, "secrets", "enable", "-path="+revMount, pluginName)
	w.storeToken = w.transitStoreToken(t)
	w.secretForms = []string{w.keySecret, "AWS4" + w.keySecret, w.storeToken}
	w.cli(t, "write", revMount+"/config", "access_key="+w.keyID, "secret_key="+w.keySecret, "key_store=transit",
		"transit_address="+w.vault.Addr, "transit_token="+w.storeToken, "sts_endpoint="+w.peer.URL, "iam_endpoint="+w.peer.URL)
	w.cli(t, "write", revMount+"/roles/app", "credential_type=assumed_role", "role_arns="+revRoleARN, "revoke_mode=deny_session")
	return w
}

func (w *revWorld) mint(t *testing.T, role string) lease {
	t.Helper()
	var l lease
	out := w.cli(t, "read", "-format=json", revMount+"/creds/"+role)
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.ID == "" {
		t.Fatalf("creds/%s: %v", role, err)
	}
	return l
}

// use makes an IAM call with the lease's session; nil when the peer takes it.
func (w *revWorld) use(l lease) error {
	client := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.peer.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(l.Creds.AccessKey, l.Creds.SecretKey, l.Creds.SessionToken)})
	_, err := client.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("rev-target")})
	return err
}

func isDenied(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDenied"
}

func (w *revWorld) mustWork(t *testing.T, what string, l lease) {
	t.Helper()
	if err := w.use(l); err != nil {
		t.Fatalf("%s: refused: %v", what, err)
	}
}

func (w *revWorld) mustBeDenied(t *testing.T, what string, l lease) {
	t.Helper()
	if err := w.use(l); !isDenied(err) {
		t.Fatalf("%s: want AccessDenied, got %v", what, err)
	}
}

// denied is how many sessions the mount's deny policy names, -1 when the
// role has none of the mount's policies.
func (w *revWorld) denied(t *testing.T) int {
	t.Helper()
	return w.deniedOn(t, revRoleARN)
}

func (w *revWorld) deniedOn(t *testing.T, roleARN string) int {
	t.Helper()
	doc := w.ourPolicy(roleARN)
	if doc == "" {
		return -1
	}
	var p struct {
		Statement []struct {
			Sid       string
			Condition map[string]map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("policy: %v", err)
	}
	for _, st := range p.Statement {
		var ids []string
		if st.Sid == "RevokedSessions" && json.Unmarshal(st.Condition["StringEquals"]["aws:userid"], &ids) == nil {
			return len(ids)
		}
	}
	return 0
}

func (w *revWorld) revokeOne(t *testing.T) {
	a, b := w.mint(t, "app"), w.mint(t, "app")
	w.mustWork(t, "lease a", a)
	w.mustWork(t, "lease b", b)
	w.cli(t, "lease", "revoke", "-sync", a.ID)
	w.mustBeDenied(t, "revoked lease a", a)
	w.mustWork(t, "lease b after a's revocation", b)
	if n := w.denied(t); n != 1 {
		t.Fatalf("the policy denies %d sessions, want 1", n)
	}
}

func (w *revWorld) revokePrefix(t *testing.T) {
	c, d := w.mint(t, "app"), w.mint(t, "app")
	before := w.denied(t)
	w.cli(t, "lease", "revoke", "-sync", "-prefix", revMount+"/creds/app")
	w.mustBeDenied(t, "lease c", c)
	w.mustBeDenied(t, "lease d", d)
	if n := w.denied(t); n < before+2 {
		t.Fatalf("the policy denies %d sessions, want at least %d", n, before+2)
	}
}

// ourPolicy is the mount's deny policy on the target role; empty when none.
func (w *revWorld) ourPolicy(roleARN string) string {
	for _, n := range w.peer.RolePolicyNames(roleARN) {
		if strings.HasPrefix(n, "vault-aws-hmac-revoked-") {
			doc, _ := w.peer.RolePolicy(roleARN, n)
			return doc
		}
	}
	return ""
}

// revokeQuota: with the role's inline policies near IAM's quota, the
// revocation fails and says so; once room is made, it succeeds.
func (w *revWorld) revokeQuota(t *testing.T) {
	l := w.mint(t, "app")
	// The filler leaves less room than one more session takes.
	head, tail := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::`, `"}]}`
	filler := head + strings.Repeat("b", 10240-len(w.ourPolicy(revRoleARN))-len(head)-len(tail)-10) + tail
	if _, err := w.admin.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String("rev-target"),
		PolicyName: aws.String("filler"), PolicyDocument: aws.String(filler)}); err != nil {
		t.Fatal(err)
	}
	out, err := w.tryCLI("lease", "revoke", "-sync", l.ID)
	if err == nil || !strings.Contains(out, "LimitExceeded") {
		t.Fatalf("revocation over IAM's quota: %v\n%s", err, redact(out, w.world))
	}
	w.mustWork(t, "the session whose revocation failed", l)
	if _, err := w.admin.DeleteRolePolicy(context.Background(), &iam.DeleteRolePolicyInput{RoleName: aws.String("rev-target"), PolicyName: aws.String("filler")}); err != nil {
		t.Fatal(err)
	}
	w.cli(t, "lease", "revoke", "-sync", l.ID)
	w.mustBeDenied(t, "the session once revoked", l)
}

func (w *revWorld) killSwitch(t *testing.T) {
	a, b := w.mint(t, "app"), w.mint(t, "app")
	w.cli(t, "write", revMount+"/roles/plain", "credential_type=assumed_role", "role_arns="+revRoleARN)
	other := w.mint(t, "plain") // no revoke_mode: no mount tag, as if minted elsewhere
	out := w.cli(t, "write", "-f", "-format=json", revMount+"/roles/app/revoke-sessions")
	var resp struct {
		Data struct {
			DeniedBefore string `json:"denied_before"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	before, err := time.Parse(time.RFC3339, resp.Data.DeniedBefore)
	if err != nil {
		t.Fatal(err)
	}
	w.mustBeDenied(t, "session a before the kill switch", a)
	w.mustBeDenied(t, "session b before the kill switch", b)
	w.mustWork(t, "a session without the mount's tag", other)
	for !time.Now().After(before) {
		time.Sleep(100 * time.Millisecond) // TokenIssueTime has whole seconds
	}
	w.mustWork(t, "a session minted after the kill switch", w.mint(t, "app"))
}

func (w *revWorld) noBoundary(t *testing.T) {
	out, err := w.tryCLI("write", revMount+"/roles/open", "credential_type=assumed_role", "role_arns="+openRoleARN, "revoke_mode=deny_session")
	if err == nil || !strings.Contains(out, "revoke_mode: deny_session needs a permissions boundary") {
		t.Fatalf("deny_session on a role without a boundary: %v\n%s", err, redact(out, w.world))
	}
	if out, err := w.tryCLI("read", revMount+"/roles/open"); err == nil && strings.Contains(out, "deny_session") {
		t.Fatal("the refused role was written")
	}
}

func (w *revWorld) chain(t *testing.T) {
	w.cli(t, "write", revMount+"/roles/chain", "credential_type=assumed_role", "role_arns="+openRoleARN, "role_chain="+chainRoleARN)
	l := w.mint(t, "chain")
	if !strings.HasPrefix(l.Creds.ARN, "arn:aws:sts::123456789012:assumed-role/rev-hop2/") {
		t.Fatalf("arn %s, want the last hop's", l.Creds.ARN)
	}
	if l.TTL > 3600 || l.Creds.TTL > 3600 {
		t.Fatalf("lease %ds, credentials %ds: over the one-hour chained limit", l.TTL, l.Creds.TTL)
	}
	if got := w.peerIdentity(t, l.Creds); got != l.Creds.ARN {
		t.Fatalf("the credentials act as %s", got)
	}
	if out, err := w.tryCLI("write", revMount+"/creds/chain", "ttl=2h"); err == nil || !strings.Contains(out, "ttl") {
		t.Fatalf("2h on a chain: %v\n%s", err, redact(out, w.world))
	}
}

// expiryPruned: a revoked session that expires leaves the policy, which is
// deleted once empty, by the plugin's periodic function. The peer ends the
// session after 20 seconds, whatever was asked.
func (w *revWorld) expiryPruned(t *testing.T) {
	w.cli(t, "write", revMount+"/roles/short", "credential_type=assumed_role", "role_arns="+revRoleARN, "revoke_mode=deny_session", "default_sts_ttl=15m")
	w.peer.CapSessionLife(20 * time.Second)
	l := w.mint(t, "short")
	w.peer.CapSessionLife(0)
	w.cli(t, "lease", "revoke", "-sync", l.ID)
	if w.denied(t) < 1 {
		t.Fatal("the short session is not in the policy")
	}
	baseline := w.denied(t)
	deadline := time.Now().Add(3 * time.Minute)
	for w.denied(t) >= baseline {
		if time.Now().After(deadline) {
			t.Fatalf("the expired session is still denied: %d entries", w.denied(t))
		}
		time.Sleep(time.Second) // waiting for Vault's periodic call
	}
}

// concurrent: fifty leases revoked through Vault's API by eight callers
// at once leave exactly fifty sessions in the policy IAM holds.
func (w *revWorld) concurrent(t *testing.T) {
	w.cli(t, "write", revMount+"/roles/many", "credential_type=assumed_role", "role_arns="+manyRoleARN, "revoke_mode=deny_session")
	ids := make(chan string, 50)
	for i := 0; i < 50; i++ {
		s, err := w.vault.Client.Logical().Read(revMount + "/creds/many")
		if err != nil || s == nil || s.LeaseID == "" {
			t.Fatalf("creds/many: %v", err)
		}
		ids <- s.LeaseID
	}
	close(ids)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				errs <- w.vault.Client.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: id, Sync: true})
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
	if n := w.deniedOn(t, manyRoleARN); n != 50 {
		t.Fatalf("the policy denies %d sessions, want 50", n)
	}
}

// noKeySecret: the key's secret and the store token appear in no storage
// file, server log or audit log.
func (w *revWorld) noKeySecret(t *testing.T) {
	t.Helper()
	files := []string{w.vault.Process.LogPath, w.vault.AuditPath}
	_ = filepath.Walk(w.vault.StorageDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for i, form := range w.secretForms {
			if bytes.Contains(data, []byte(form)) {
				t.Errorf("%s contains secret material (form %d)", f, i)
			}
		}
	}
}
