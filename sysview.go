package awshmac

import (
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// systemViewTTL is how long an answer of Vault's system view is reused.
const systemViewTTL = time.Second

// cachedSystemView answers ReplicationState and MaxLeaseTTL from memory
// for a second. The framework asks for the replication state on every
// request (for the operation's forwarding flags), creds/ asks for the max
// lease TTL, and in a plugin each ask is a gRPC round trip back to Vault —
// as costly as a storage read. Both change only when a node is promoted or
// a mount tuned; a second's delay is what Vault's own forwarding tolerates.
type cachedSystemView struct {
	logical.SystemView
	state  timedValue[consts.ReplicationState]
	maxTTL timedValue[time.Duration]
}

func (v *cachedSystemView) ReplicationState() consts.ReplicationState {
	return v.state.get(v.SystemView.ReplicationState)
}

func (v *cachedSystemView) MaxLeaseTTL() time.Duration {
	return v.maxTTL.get(v.SystemView.MaxLeaseTTL)
}

// timedValue is one answer, fetched again once systemViewTTL has passed.
type timedValue[T any] struct {
	mu      sync.Mutex
	value   T
	fetched time.Time
}

func (c *timedValue[T]) get(fetch func() T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.fetched) >= systemViewTTL {
		c.value, c.fetched = fetch(), now
	}
	return c.value
}
