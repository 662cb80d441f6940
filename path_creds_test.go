package awshmac

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/hashicorp/vault/sdk/logical"
)

func callerIdentity(t *testing.T, peer *ststest.Server, data map[string]any) string {
	t.Helper()
	client := sts.New(sts.Options{
		Region: "eu-west-3", BaseEndpoint: aws.String(peer.URL), HTTPClient: testHTTPClient,
		Credentials: credentials.NewStaticCredentialsProvider(data["access_key"].(string), data["secret_key"].(string), data["session_token"].(string)),
	})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("minted credentials refused: %v", err)
	}
	return aws.ToString(out.Arn)
}

func TestCredsEveryType(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token", "default_sts_ttl": "2h"})
	e.mustWrite(t, "roles/session-mfa", map[string]any{"credential_type": "session_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/vault"})
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "max_sts_ttl": "4h",
		"session_tags": "team=platform", "transitive_tag_keys": "team", "policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess",
		"policy_document": `{"Version": "2012-10-17", "Statement": []}`, "source_identity": "vault", "allowed_session_names": "app-*"})
	e.mustWrite(t, "roles/fed", map[string]any{"credential_type": "federation_token", "policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess", "allowed_session_names": "app-*"})
	tests := []struct {
		path     string
		data     map[string]any
		wantARN  string
		wantLife time.Duration
	}{
		{"creds/session", nil, "arn:aws:iam::123456789012:user/vault", 2 * time.Hour},
		{"creds/session", map[string]any{"ttl": "30m"}, "arn:aws:iam::123456789012:user/vault", 30 * time.Minute},
		{"creds/session-mfa", map[string]any{"mfa_code": "123456"}, "arn:aws:iam::123456789012:user/vault", time.Hour},
		{"creds/deploy", map[string]any{"role_session_name": "app-1", "ttl": "3h"}, "arn:aws:sts::123456789012:assumed-role/deploy/app-1", 3 * time.Hour},
		{"creds/fed", map[string]any{"role_session_name": "app-2"}, "arn:aws:sts::123456789012:federated-user/app-2", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var op logical.Operation = logical.ReadOperation
			if tt.data != nil {
				op = logical.UpdateOperation
			}
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: tt.path, Data: tt.data, Storage: e.storage, DisplayName: "token-app"})
			if err != nil || resp == nil || resp.IsError() {
				t.Fatalf("%v %v", err, resp)
			}
			d := resp.Data
			if d["session_token"] != d["security_token"] || d["session_token"] == "" {
				t.Fatal("session_token and security_token differ or are empty")
			}
			if resp.Secret == nil || resp.Secret.Renewable {
				t.Fatal("no lease, or a renewable one")
			}
			if resp.Secret.TTL < tt.wantLife-time.Minute || resp.Secret.TTL > tt.wantLife {
				t.Fatalf("lease %v, want about %v", resp.Secret.TTL, tt.wantLife)
			}
			if exp, err := time.Parse(time.RFC3339, d["expiration"].(string)); err != nil || time.Until(exp) > tt.wantLife+time.Minute {
				t.Fatalf("expiration %v", d["expiration"])
			}
			if got := callerIdentity(t, e.peer, d); got != tt.wantARN {
				t.Fatalf("credentials are %s, want %s", got, tt.wantARN)
			}
			if strings.HasPrefix(tt.path, "creds/deploy") || strings.HasPrefix(tt.path, "creds/fed") {
				if d["arn"] != tt.wantARN {
					t.Fatalf("arn %v", d["arn"])
				}
			}
		})
	}
}

func TestCredsBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "max_sts_ttl": "2h"})
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.mustWrite(t, "roles/mfa", map[string]any{"credential_type": "session_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/vault"})
	e.mustWrite(t, "roles/fed", map[string]any{"credential_type": "federation_token"})
	e.mustWrite(t, "roles/ghost", map[string]any{"credential_type": "assumed_role", "role_arns": "arn:aws:iam::123456789012:role/ghost"})
	tests := []struct {
		path      string
		data      map[string]any
		wantField string
	}{
		{"creds/nope", nil, "name"},
		{"creds/deploy", map[string]any{"ttl": "3h"}, "ttl"},
		{"creds/deploy", map[string]any{"ttl": "5m"}, "ttl"},
		{"creds/deploy", map[string]any{"role_arn": "arn:aws:iam::123456789012:role/other"}, "role_arn"},
		{"creds/deploy", map[string]any{"role_session_name": "bad name!"}, "role_session_name"},
		{"creds/session", map[string]any{"role_arn": testRoleARN}, "role_arn"},
		{"creds/session", map[string]any{"role_session_name": "x1"}, "role_session_name"},
		{"creds/session", map[string]any{"mfa_code": "123456"}, "mfa_code"},
		{"creds/mfa", nil, "mfa_code"},
		{"creds/mfa", map[string]any{"mfa_code": "12ab56"}, "mfa_code"},
		{"creds/mfa", map[string]any{"mfa_code": "000000"}, "AccessDenied"},
		{"creds/fed", map[string]any{"role_session_name": strings.Repeat("n", 40)}, "role_session_name"},
		{"creds/ghost", nil, "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := len(storageKeys(t, e.storage))
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: tt.path, Data: tt.data, Storage: e.storage})
			if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), tt.wantField) {
				t.Fatalf("got %v %v, want a 400 naming %s", err, resp, tt.wantField)
			}
			if after := len(storageKeys(t, e.storage)); after != before {
				t.Fatal("a failed request stored something")
			}
		})
	}
}

func TestKeyStoreOutageIs503(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.b.dropConfig()
	if err := os.Rename(e.kekPath, e.kekPath+".away"); err != nil {
		t.Fatal(err)
	}
	resp, err := e.request(t, logical.ReadOperation, "creds/session", nil)
	if status(resp, err) != http.StatusServiceUnavailable || !strings.Contains(errText(resp, err), "tink") {
		t.Fatalf("got %v %v, want 503 naming the tink store", err, resp)
	}
	// Callers see the cause, not the server's internals: no KEK path.
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	for path, data := range map[string]map[string]any{
		"creds/session": nil,
		"sign/signer":   {"url": "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, path, data)
		if status(resp, err) != http.StatusServiceUnavailable || strings.Contains(errText(resp, err), filepath.Dir(e.kekPath)) {
			t.Fatalf("%s: got %v %v, want 503 without the server's paths", path, err, resp)
		}
	}
	if err := os.Rename(e.kekPath+".away", e.kekPath); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.request(t, logical.ReadOperation, "creds/session", nil); err != nil || resp.IsError() {
		t.Fatalf("after recovery: %v %v", err, resp)
	}
}

// A frozen STS answers 504 naming STS once sts_timeout has passed, and the
// peer's other faults keep their statuses: refusal 400, outage 502.
func TestSTSTimeoutAndOutage(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "config", with(e.baseConfig(), "sts_timeout", "1s", "max_retries", -1))
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	if resp, _ := e.request(t, logical.ReadOperation, "config", nil); resp.Data["sts_timeout"] != int64(1) {
		t.Fatalf("sts_timeout read back as %v", resp.Data["sts_timeout"])
	}

	e.peer.Freeze()
	done := make(chan struct{})
	var resp *logical.Response
	var err error
	go func() {
		resp, err = e.request(t, logical.ReadOperation, "creds/session", nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("creds/ still waiting for a frozen STS long after sts_timeout")
	}
	e.peer.Thaw()
	if status(resp, err) != http.StatusGatewayTimeout || !strings.Contains(errText(resp, err), "STS") || !strings.Contains(errText(resp, err), "sts_timeout") {
		t.Fatalf("frozen STS: got %v %v, want 504 naming STS and sts_timeout", resp, err)
	}

	e.peer.InjectFault(ststest.Fault{Code: "InternalFailure", Message: "down", Status: 500, Count: 1})
	resp, err = e.request(t, logical.ReadOperation, "creds/session", nil)
	if status(resp, err) != http.StatusBadGateway || !strings.Contains(errText(resp, err), "InternalFailure") {
		t.Fatalf("STS outage: got %v %v, want 502 with AWS's code", resp, err)
	}
	if resp, err := e.request(t, logical.ReadOperation, "creds/session", nil); err != nil || resp.IsError() {
		t.Fatalf("after the outage: %v %v", resp, err)
	}
}

// The caller's own context bounds the wait too, well inside sts_timeout.
func TestCallerContextHonoured(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "config", with(e.baseConfig(), "sts_timeout", "5m"))
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.peer.Freeze()
	defer e.peer.Thaw()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the request is waiting on the peer.
		for e.peer.Waiting() == 0 {
			runtime.Gosched()
		}
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/session", Storage: e.storage})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want the caller's cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("creds/ ignored its caller's cancelled context")
	}
}

// One path, one capability: there is no second path to a role's
// credentials that a policy on creds/<role> would not cover.
func TestNoCredentialsAlias(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	for _, path := range []string{"sts/session", "STS/session", "sts/x"} {
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: path, Storage: e.storage})
		if !errors.Is(err, logical.ErrUnsupportedPath) {
			t.Errorf("%s: %v %v, want unsupported path", path, resp, err)
		}
	}
	for _, p := range e.b.Paths {
		if !strings.HasPrefix(p.Pattern, "^creds/") && p.Operations[logical.ReadOperation] != nil &&
			strings.Contains(p.Pattern, "(?P<name>") && !strings.HasPrefix(p.Pattern, "^roles/") {
			t.Errorf("another path reads a role by name: %s", p.Pattern)
		}
	}
}
