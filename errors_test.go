package awshmac

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

// An AWS failure is labelled with the service actually called: IAM for the
// rotation's and the config read's IAM calls, STS for STS's, through the
// real SDK clients against the peer.
func TestAWSErrorsNameTheServiceCalled(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	en := e.engine(t)
	ctx := context.Background()
	listKeys := func(ctx context.Context) error {
		_, err := en.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
		return err
	}
	whoami := func(ctx context.Context) error {
		_, err := en.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		return err
	}
	// The config read asks IAM when the key was made; its warning says IAM.
	e.peer.InjectFault(ststest.Fault{Action: "ListAccessKeys", Code: "AccessDenied", Message: "no", Status: 403, Count: 1})
	resp, err := e.request(t, logical.ReadOperation, "config", nil)
	if err != nil || resp == nil || !strings.Contains(fmt.Sprint(resp.Warnings), "IAM could not be asked: IAM ListAccessKeys refused") {
		t.Fatalf("config read with IAM refusing: %v %v", resp, err)
	}
	// Refusals are answered at once; the 500 is retried, so it goes last.
	for _, c := range []struct {
		action string
		call   func(context.Context) error
		status int
		want   string
	}{
		{"ListAccessKeys", listKeys, 403, "IAM ListAccessKeys refused: AccessDenied"},
		{"GetCallerIdentity", whoami, 403, "STS GetCallerIdentity refused: AccessDenied"},
		{"ListAccessKeys", listKeys, 500, "IAM ListAccessKeys refused: ServiceFailure"},
	} {
		code := map[int]string{403: "AccessDenied", 500: "ServiceFailure"}[c.status]
		e.peer.InjectFault(ststest.Fault{Action: c.action, Code: code, Message: "no", Status: c.status, Count: map[int]int{403: 1, 500: 10}[c.status]})
		err := en.callAWS(ctx, c.action, c.call)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Fatalf("%s answering %d: %v, want %q", c.action, c.status, err, c.want)
		}
	}
}

// Errors the plugin makes itself, not from the SDK, are labelled by the
// operation's service.
func TestPluginMadeAWSErrorsNameTheService(t *testing.T) {
	for _, c := range []struct {
		err  *stsError
		want string
	}{
		{&stsError{op: "CreateAccessKey", err: errors.New("x"), code: http.StatusBadGateway, detail: "the answer is not a new key"}, "IAM CreateAccessKey: "},
		{&stsError{op: "DeleteAccessKey", err: context.DeadlineExceeded, timeout: 10e9}, "IAM did not answer DeleteAccessKey"},
		{&stsError{op: "AssumeRole", detail: "answered without a valid AssumedRoleId"}, "STS AssumeRole: "},
		{&stsError{op: "GetCallerIdentity (new key)", err: errors.New("x")}, "STS could not be reached"},
	} {
		if got := c.err.Error(); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want it to start %q", c.err.op, got, c.want)
		}
	}
}
