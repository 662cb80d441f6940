package awshmac

import (
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

const otherRoleARN = "arn:aws:iam::123456789012:role/other"

func sessionRole(arn string) map[string]any {
	return map[string]any{"credential_type": "assumed_role", "role_arns": arn,
		"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"}
}

// One role's AssumeRole hanging at STS stalls neither another role's
// signing nor its own callers beyond their one shared mint.
func TestSessionMintDoesNotStallOtherRoles(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.peer.AddRole(ststest.Role{ARN: otherRoleARN})
	e.mustWrite(t, "roles/slow", sessionRole(testRoleARN))
	e.mustWrite(t, "roles/fast", sessionRole(otherRoleARN))
	sign := map[string]any{"url": e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"}

	release := e.peer.HoldRole(testRoleARN)
	defer release()
	var slow sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		slow.Add(1)
		go func() {
			defer slow.Done()
			resp, err := e.request(t, logical.UpdateOperation, "sign/slow", sign)
			if msg := errText(resp, err); msg != "" {
				errs <- msg
			}
		}()
	}
	waitUntil(t, "the slow role's AssumeRole to reach STS", func() bool { return e.peer.Waiting() == 1 })

	fastDone := make(chan error, 1)
	go func() {
		resp, err := e.request(t, logical.UpdateOperation, "sign/fast", sign)
		if msg := errText(resp, err); msg != "" {
			fastDone <- errorString(msg)
			return
		}
		fastDone <- nil
	}()
	select {
	case err := <-fastDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sign/fast waited for another role's AssumeRole")
	}
	if e.peer.Waiting() != 1 {
		t.Fatal("the slow role's call is no longer held: the check above proved nothing")
	}
	release()
	slow.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if n := countCalls(e.peer, "AssumeRole", testRoleARN); n != 1 {
		t.Fatalf("%d AssumeRole calls for 8 concurrent callers of one role, want 1", n)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func countCalls(peer *ststest.Server, action, roleARN string) int {
	n := 0
	for _, c := range peer.Calls() {
		if c.Action == action && url.Values(c.Params).Get("RoleArn") == roleARN {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A role that mints signs with its own session unless sign_with=key is
// written; one that only signs, or needs MFA, signs with the key.
func TestSignWithDefault(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		fields map[string]any
		want   string
	}{
		{map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN}, "session"},
		{map[string]any{"credential_type": "session_token"}, "session"},
		{map[string]any{"credential_type": "federation_token"}, "session"},
		{map[string]any{"credential_type": "session_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/dev"}, "key"},
		{map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "sign_with": "key"}, "key"},
		{map[string]any{"allowed_services": "s3"}, "key"},
	} {
		e.mustWrite(t, "roles/r", tc.fields)
		resp, err := e.request(t, logical.ReadOperation, "roles/r", nil)
		if err != nil || resp == nil {
			t.Fatal(err)
		}
		if got := resp.Data["sign_with"]; got != tc.want {
			t.Errorf("%v: sign_with %v, want %s", tc.fields, got, tc.want)
		}
		if _, err := e.request(t, logical.DeleteOperation, "roles/r", nil); err != nil {
			t.Fatal(err)
		}
	}
}
