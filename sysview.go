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
}

func (v *cachedSystemView) ReplicationState() consts.ReplicationState {
	v.mu.Lock()
	defer v.mu.Unlock()
	if now := time.Now(); now.Sub(v.fetched) >= replicationStateTTL {
		v.state, v.fetched = v.SystemView.ReplicationState(), now
	}
	return v.state
}
