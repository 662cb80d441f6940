package awshmac

import (
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicationStateTTL is how long a replication state read is reused.
const replicationStateTTL = time.Second

// cachedSystemView answers ReplicationState from memory for a second.
// The framework asks for it on every request (for the forwarding flags
// of the operation), and in a plugin each ask is a gRPC round trip back
// to Vault — as costly as a storage read. The state changes only when a
// node is promoted or demoted; a second's delay in seeing that is what
// Vault's own forwarding already tolerates.
type cachedSystemView struct {
	logical.SystemView

	mu      sync.Mutex
	state   consts.ReplicationState
	fetched time.Time

	ttlMu      sync.Mutex
	maxTTL     time.Duration
	ttlFetched time.Time
}

// MaxLeaseTTL is asked on every creds/ request (credentials never outlive
// it); it changes only when the mount is tuned, so it is kept a second too.
func (v *cachedSystemView) MaxLeaseTTL() time.Duration {
	v.ttlMu.Lock()
	defer v.ttlMu.Unlock()
	if now := time.Now(); now.Sub(v.ttlFetched) >= replicationStateTTL {
		v.maxTTL, v.ttlFetched = v.SystemView.MaxLeaseTTL(), now
	}
	return v.maxTTL
}

func (v *cachedSystemView) ReplicationState() consts.ReplicationState {
	v.mu.Lock()
	defer v.mu.Unlock()
	if now := time.Now(); now.Sub(v.fetched) >= replicationStateTTL {
		v.state, v.fetched = v.SystemView.ReplicationState(), now
	}
	return v.state
}
