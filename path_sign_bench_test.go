package awshmac

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// BenchmarkSignHandler is sign/ inside the plugin, without Vault around it.
func BenchmarkSignHandler(b *testing.B) {
	t := &testing.T{}
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*"})
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
