package awshmac

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
)

// The stored config keeps its numbers as written: through float64 an
// integer above 2^53 changed, and 2^64-1 made the stored config
// unreadable (every request failed until it was deleted).
func TestConfigNumbersExact(t *testing.T) {
	pcrs := []uint{1<<53 + 1, math.MaxUint64}
	cfg := &pluginConfig{commonConfig: commonConfig{KeyStore: "tpm", AccessKey: "AKIAIOSFODNN7EXAMPLE"},
		store: &tpmParams{Mode: tpmModeDuplicate, Targets: []tpm.Target{{Parent: tpm.ParentSRK, PCRs: pcrs}}}}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back pluginConfig
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the stored config does not read back: %v", err)
	}
	if got := back.store.(*tpmParams).Targets[0].PCRs; !slices.Equal(got, pcrs) {
		t.Fatalf("pcrs %v, stored as %v", pcrs, got)
	}
	clone, err := cfg.clone()
	if err != nil || !slices.Equal(clone.store.(*tpmParams).Targets[0].PCRs, pcrs) {
		t.Fatalf("clone: %v", err)
	}
}

// A config that would not read back is refused as the caller's mistake
// (400), not stored.
func TestConfigMustReadBack(t *testing.T) {
	_, err := json.Marshal(&pluginConfig{commonConfig: commonConfig{KeyStore: "no-such-store"}})
	var bad *badInputError
	if !errors.As(err, &bad) {
		t.Fatalf("a config that does not read back: %v", err)
	}
	_, err = logical.StorageEntryJSON(configStoragePath, &pluginConfig{commonConfig: commonConfig{KeyStore: "no-such-store"}})
	if !errors.As(err, &bad) {
		t.Fatalf("storing a config that does not read back: %v", err)
	}
}
