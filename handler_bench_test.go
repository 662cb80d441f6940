package awshmac

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/hashicorp/vault/sdk/logical"
)

// BenchmarkSignHandler is sign/ inside the plugin, without Vault around it.
func BenchmarkSignHandler(b *testing.B) {
	t := &testing.T{}
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*"})
	data := map[string]any{"url": "http://127.0.0.1:9000/testbucket/reports/2026/q3.csv", "service": "s3", "region": "us-east-1"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "sign/signer", Data: data, Storage: e.storage})
		if err != nil || resp.IsError() {
			b.Fatal(err, resp)
		}
	}
}

// BenchmarkCredsHandler is creds/ inside the plugin against the STS peer,
// beside the same AssumeRole made directly with the SDK.
func BenchmarkCredsHandler(b *testing.B) {
	t := &testing.T{}
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN})
	b.Run("plugin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "creds/deploy", Storage: e.storage})
			if err != nil || resp.IsError() {
				b.Fatal(err, resp)
			}
		}
	})
	b.Run("bare-sdk", func(b *testing.B) {
		client := sts.New(sts.Options{Region: "eu-west-3", BaseEndpoint: aws.String(e.peer.URL),
			Credentials: credentials.NewStaticCredentialsProvider(keytest.AccessKeyID, keytest.Secret, "")})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(testRoleARN), RoleSessionName: aws.String("bench"), DurationSeconds: aws.Int32(3600)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHugeHeaderRequest is sign/ with 48,000 headers: refused (400)
// after counting them, before any conversion or canonicalisation.
func BenchmarkHugeHeaderRequest(b *testing.B) {
	t := &testing.T{}
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*"})
	headers := make(map[string]any, 48000)
	for i := range 48000 {
		headers[fmt.Sprintf("X-H%d", i)] = "v"
	}
	data := map[string]any{"url": "http://127.0.0.1:9000/b/k", "service": "s3", "headers": headers}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "sign/signer", Data: data, Storage: e.storage})
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "headers") {
			b.Fatal(err, resp)
		}
	}
}
