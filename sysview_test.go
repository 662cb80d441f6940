package awshmac

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts the ReplicationState round trips.
type countingSystemView struct {
	logical.StaticSystemView
	calls atomic.Int64
}

func (v *countingSystemView) ReplicationState() consts.ReplicationState {
	v.calls.Add(1)
	return v.StaticSystemView.ReplicationState()
}

// The framework asks for the replication state on every request; the
// plugin asks Vault at most once a second.
func TestReplicationStateAskedOncePerSecond(t *testing.T) {
	sys := &countingSystemView{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: 3600, MaxLeaseTTLVal: 7200}}
	config := logical.TestBackendConfig()
	config.StorageView = &logical.InmemStorage{}
	config.System = sys
	b, err := Factory(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Cleanup(context.Background())
	for range 100 {
		req := &logical.Request{Operation: logical.ListOperation, Path: "roles/", Storage: config.StorageView}
		if _, err := b.HandleRequest(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	// A slow machine may cross one second boundary, not fifty.
	if n := sys.calls.Load(); n < 1 || n > 2 {
		t.Fatalf("100 requests asked Vault for the replication state %d times", n)
	}
}
