package awshmac

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// enrolTarget is what aws-hmac tpm enroll prints for sw, with the CA's
// intermediate as its chain.
func enrolTarget(t *testing.T, sw *testenv.SWTPM, ca *testenv.EKCA, kind string) tpm.Target {
	t.Helper()
	target, err := tpm.Enroll(context.Background(), tpm.Config{Device: "tcp://" + sw.Addr}, kind, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(ca.Intermediate)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	target.EKChain = [][]byte{block.Bytes}
	return *target
}

func targetsJSON(t *testing.T, targets ...tpm.Target) string {
	t.Helper()
	b, err := json.Marshal(targets)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *testEnv) tpmNode(t *testing.T) map[string]any {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "config/tpm-node", nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("config/tpm-node: %v %v", err, resp)
	}
	return resp.Data
}

// onNode makes the backend the plugin of the node whose TPM is sw (its
// AWS_HMAC_TPM_DEVICE), reading the same stored config, as after a leader
// change.
func (e *testEnv) onNode(sw *testenv.SWTPM) {
	e.b.env.tpmDevice = "tcp://" + sw.Addr
	e.b.dropConfig()
}

func (e *testEnv) credsStatus(t *testing.T) (int, string) {
	t.Helper()
	resp, err := e.request(t, logical.ReadOperation, "creds/r", nil)
	return status(resp, err), errText(resp, err)
}

// Two enrolled nodes share one config: each imports its own blob (the
// config write proves the key with STS through it), config/tpm-node names
// the target; a rotation on one is followed by the other; a third,
// unenrolled TPM answers creds/ with a 503 that says so, and logs its Name.
func TestTPMDuplicateNodes(t *testing.T) {
	e, logs := attestEnv(t)
	ca := testenv.NewEKCA(t)
	a, b, c := testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, ca)
	e.b.env.tpmAddresses = []string{a.Addr, b.Addr, c.Addr}
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, "")
	targets := targetsJSON(t, enrolTarget(t, a, ca, tpm.ParentEKRSA), enrolTarget(t, b, ca, tpm.ParentEKECC384))
	e.onNode(a)
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "tpm", "tpm_mode", "duplicate", "tpm_targets", targets))
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token"})
	if st := e.tpmNode(t); st["target"] != 0 || st["blob_loads"] != true || st["tpm_device"] != "tcp://"+a.Addr {
		t.Fatalf("node a: %v", st)
	}
	// The copy cannot leave its TPM; the periodic check must not see an
	// exposure (with rotate_on_exposure it would rotate for ever).
	if att := e.attestation(t, nil); len(att.Data["exposures"].([]string)) != 0 {
		t.Fatalf("attestation of a duplicated key: %v", att.Data)
	}
	e.onNode(b)
	if st := e.tpmNode(t); st["target"] != 1 || st["blob_loads"] != true {
		t.Fatalf("node b: %v", st)
	}
	if code, msg := e.credsStatus(t); code != http.StatusOK {
		t.Fatalf("creds on node b: %d %q", code, msg)
	}
	e.mustWrite(t, "config/rotate-root", nil)
	if keyWorks(e, keytest.AccessKeyID, keytest.Secret) {
		t.Fatal("the first secret still works after rotation")
	}
	for _, node := range []*testenv.SWTPM{a, b} {
		e.onNode(node)
		if code, msg := e.credsStatus(t); code != http.StatusOK {
			t.Fatalf("creds after rotation on %s: %d %q", node.Addr, code, msg)
		}
	}
	e.onNode(c)
	if code, msg := e.credsStatus(t); code != http.StatusServiceUnavailable || !strings.Contains(msg, "this node's TPM is not enrolled") {
		t.Fatalf("node c: %d %q", code, msg)
	}
	if st := e.tpmNode(t); st["target"] != -1 || st["blob_loads"] != false || len(st["parent_names"].(map[string]any)) != 2 {
		t.Fatalf("node c: %v", st)
	}
	if !strings.Contains(logs.String(), "ek-rsa-2048=") {
		t.Fatal("the log does not name node c's parent")
	}
	read, _ := e.request(t, logical.ReadOperation, "config", nil)
	noSecretsIn(t, "the log", logs.String(), keytest.Secret)
	noSecretsIn(t, "the config read", read.Data, keytest.Secret)
	noSecretsIn(t, "storage", storageDump(t, e.storage), keytest.Secret)
}

func storageDump(t *testing.T, s logical.Storage) string {
	t.Helper()
	var out strings.Builder
	for _, k := range storageKeys(t, s) {
		entry, _ := s.Get(context.Background(), k)
		if entry != nil {
			out.Write(entry.Value)
		}
	}
	return out.String()
}

// Targets the registration does not allow are a 400 naming tpm_targets,
// and nothing is written: another CA's EK, an SRK without the allowance.
func TestTPMDuplicateTargetRefused(t *testing.T) {
	e := newTestEnv(t)
	ca, other := testenv.NewEKCA(t), testenv.NewEKCA(t)
	a, stranger := testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, other)
	e.b.env.tpmAddresses = []string{a.Addr}
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, "")
	base := with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "tpm", "tpm_mode", "duplicate", "tpm_device", "tcp://"+a.Addr)
	for name, targets := range map[string]string{
		"another CA":    targetsJSON(t, enrolTarget(t, a, ca, tpm.ParentEKRSA), enrolTarget(t, stranger, other, tpm.ParentEKRSA)),
		"SRK":           targetsJSON(t, enrolTarget(t, a, ca, tpm.ParentSRK)),
		"not JSON":      "[{",
		"unknown field": `[{"parent":"ek-rsa-2048","extra":1}]`,
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config", with(base, "tpm_targets", targets))
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "tpm_targets") {
			t.Fatalf("%s: %d %q", name, status(resp, err), errText(resp, err))
		}
	}
	if keys := storageKeys(t, e.storage); len(keys) != 0 {
		t.Fatalf("a refused write stored %v", keys)
	}
	srk := enrolTarget(t, a, ca, tpm.ParentSRK)
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, srk.Name)
	e.mustWrite(t, "config", with(base, "tpm_targets", targetsJSON(t, srk)))
}

// Blobs are checked before they are stored: one whose key carries a
// duplication policy, one wrapped to another target, tpm_pcrs in duplicate
// mode: 400s naming the field, nothing stored.
func TestTPMDuplicateBlobRefused(t *testing.T) {
	e := newTestEnv(t)
	ca := testenv.NewEKCA(t)
	a := testenv.StartSWTPMWithEK(t, ca)
	e.b.env.tpmAddresses = []string{a.Addr}
	srk := enrolTarget(t, a, ca, tpm.ParentSRK)
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, srk.Name)
	target := enrolTarget(t, a, ca, tpm.ParentEKRSA)
	blob, err := tpm.Wrap(&target, keytest.Secret, "")
	if err != nil {
		t.Fatal(err)
	}
	exportable := *blob
	pub, _ := tpm2.Unmarshal[tpm2.TPM2BPublic](blob.Public)
	contents, _ := pub.Contents()
	calc, _ := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	_ = tpm2.PolicyCommandCode{Code: tpm2.TPMCCDuplicate}.Update(calc)
	contents.AuthPolicy = tpm2.TPM2BDigest{Buffer: calc.Hash().Digest}
	exportable.Public = tpm2.Marshal(tpm2.New2B(*contents))
	base := with(e.baseConfig(), "secret_key", nil, "tink_kek_uri", nil, "key_store", "tpm", "tpm_mode", "duplicate",
		"tpm_device", "tcp://"+a.Addr, "tpm_targets", targetsJSON(t, target))
	for name, c := range map[string]struct {
		data  map[string]any
		field string
	}{
		"duplication policy": {with(base, "tpm_blobs", blobsJSON(t, exportable)), "tpm_blobs[0]"},
		"another target":     {with(base, "tpm_targets", targetsJSON(t, srk), "tpm_blobs", blobsJSON(t, *blob)), "tpm_blobs[0]"},
		"tpm_pcrs":           {with(base, "tpm_blobs", blobsJSON(t, *blob), "tpm_pcrs", "7"), "tpm_pcrs"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config", c.data)
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), c.field) {
			t.Fatalf("%s: %d %q", name, status(resp, err), errText(resp, err))
		}
	}
	if keys := storageKeys(t, e.storage); len(keys) != 0 {
		t.Fatalf("a refused write stored %v", keys)
	}
	e.mustWrite(t, "config", with(base, "tpm_blobs", blobsJSON(t, *blob)))
}

func blobsJSON(t *testing.T, blobs ...tpm.Blob) string {
	t.Helper()
	b, err := json.Marshal(blobs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Adding a node: its enrolment joins tpm_targets (no blob yet: 503 there,
// named target in config/tpm-node), a rotation wraps to it. Removing one:
// its blob goes with its target, and it answers 503.
func TestTPMDuplicateAddRemoveNode(t *testing.T) {
	e := newTestEnv(t)
	ca := testenv.NewEKCA(t)
	a, b, c := testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, ca)
	e.b.env.tpmAddresses = []string{a.Addr, b.Addr, c.Addr}
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, "")
	ta, tb, tc := enrolTarget(t, a, ca, tpm.ParentEKRSA), enrolTarget(t, b, ca, tpm.ParentEKRSA), enrolTarget(t, c, ca, tpm.ParentEKRSA)
	e.onNode(a)
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "tpm", "tpm_mode", "duplicate", "tpm_targets", targetsJSON(t, ta, tb)))
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token"})
	e.mustWrite(t, "config", map[string]any{"tpm_targets": targetsJSON(t, ta, tb, tc)})
	e.onNode(c)
	if code, msg := e.credsStatus(t); code != http.StatusServiceUnavailable || !strings.Contains(msg, "not enrolled") {
		t.Fatalf("node c before the rotation: %d %q", code, msg)
	}
	if st := e.tpmNode(t); st["target"] != 2 || st["blob_loads"] != false {
		t.Fatalf("node c before the rotation: %v", st)
	}
	e.onNode(a)
	e.mustWrite(t, "config/rotate-root", nil)
	e.onNode(c)
	if code, msg := e.credsStatus(t); code != http.StatusOK {
		t.Fatalf("node c after the rotation: %d %q", code, msg)
	}
	e.mustWrite(t, "config", map[string]any{"tpm_targets": targetsJSON(t, tc, ta)})
	if st := e.tpmNode(t); st["target"] != 0 || st["blob_loads"] != true {
		t.Fatalf("node c after b left: %v", st)
	}
	e.onNode(b)
	if code, msg := e.credsStatus(t); code != http.StatusServiceUnavailable || !strings.Contains(msg, "not enrolled") {
		t.Fatalf("node b after it left: %d %q", code, msg)
	}
}
