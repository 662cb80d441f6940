package awshmac

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// softwareSRK is a "TPM" whose private key the caller holds: a P-256 key
// pair in the SRK template, its Name computed. Anything wrapped to it can
// be unwrapped in software.
func softwareSRK(t *testing.T) tpm.Target {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := priv.PublicKey().Bytes()
	pub := tpm2.ECCSRKTemplate
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]}, Y: tpm2.TPM2BECCParameter{Buffer: raw[33:]}})
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		t.Fatal(err)
	}
	return tpm.Target{Parent: tpm.ParentSRK, ParentPublic: tpm2.Marshal(tpm2.New2B(pub)), Name: hex.EncodeToString(name.Buffer)}
}

func wantRefused(t *testing.T, what string, resp *logical.Response, err error, code int, parts ...string) {
	t.Helper()
	if status(resp, err) != code {
		t.Fatalf("%s: %d %q, want %d", what, status(resp, err), errText(resp, err), code)
	}
	for _, p := range parts {
		if !strings.Contains(errText(resp, err), p) {
			t.Fatalf("%s: %q does not say %q", what, errText(resp, err), p)
		}
	}
}

// Whoever may write config cannot choose a TPM without an EK certificate
// that receives the secret: only the registration's list of parent Names
// admits one. A software key in the SRK template is refused (with a
// guessed password and skip_verification too), the former value 1 is
// refused at write and at engine build, and a Name dropped from the list
// stops the next rotation before IAM makes a key.
func TestTPMDuplicateUncertifiedTargetPinned(t *testing.T) {
	e := newTestEnv(t)
	ca := testenv.NewEKCA(t)
	a := testenv.StartSWTPMWithEK(t, ca)
	e.b.env.tpmAddresses = []string{a.Addr}
	ta, srk := enrolTarget(t, a, ca, tpm.ParentEKRSA), enrolTarget(t, a, ca, tpm.ParentSRK)
	pinned := loadTPMEKPolicy(ca.Root, strings.ToUpper(srk.Name))
	e.b.env.tpmEK = pinned
	e.onNode(a)
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "tpm", "tpm_mode", "duplicate",
		"tpm_targets", targetsJSON(t, ta), "tpm_password", "s3cret-pw"))
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token"})
	soft := softwareSRK(t)
	for name, d := range map[string]map[string]any{
		"software SRK":                         {"tpm_targets": targetsJSON(t, ta, soft), "tpm_password": "s3cret-pw"},
		"software SRK, password guessed":       {"tpm_targets": targetsJSON(t, ta, soft), "tpm_password": "guess", "skip_verification": true},
		"software SRK, the pinned SRK's label": {"tpm_targets": targetsJSON(t, ta, tpm.Target{Parent: soft.Parent, ParentPublic: soft.ParentPublic, Name: srk.Name}), "tpm_password": "s3cret-pw"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config", d)
		wantRefused(t, name, resp, err, http.StatusBadRequest, "tpm_targets[1]")
	}
	if read, _ := e.request(t, logical.ReadOperation, "config", nil); strings.Contains(read.Data["tpm_targets"].(string), soft.Name) {
		t.Fatal("a refused target was stored")
	}

	// The former flag: refused, saying the Names are needed and why.
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, "1")
	resp, err := e.request(t, logical.UpdateOperation, "config", map[string]any{"tpm_targets": targetsJSON(t, ta)})
	wantRefused(t, "ALLOW_SRK=1, config write", resp, err, http.StatusBadRequest, envTPMAllowSRK, "parent Names", "whoever may write config")
	e.b.dropConfig()
	code, msg := e.credsStatus(t)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "tpm") {
		t.Fatalf("ALLOW_SRK=1, engine build: %d %q", code, msg)
	}

	// A pinned SRK is a target; the next rotation wraps to it.
	e.b.env.tpmEK = pinned
	e.b.dropConfig()
	e.mustWrite(t, "config", map[string]any{"tpm_targets": targetsJSON(t, ta, srk), "tpm_password": "s3cret-pw"})
	e.mustWrite(t, "config/rotate-root", nil)
	rotated := configuredKey(t, e)

	// The registration no longer lists it: the engine in use stays, the
	// next rotation stops before IAM makes a key.
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, "")
	resp, err = e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
	wantRefused(t, "rotation after the Name left the registration", resp, err, http.StatusBadRequest, "tpm_targets[1]", envTPMAllowSRK)
	if configuredKey(t, e) != rotated {
		t.Fatal("the refused rotation changed the key")
	}
	// No IAM key was left behind: a rotation with only allowed targets
	// finds the user's second slot free.
	e.mustWrite(t, "config", map[string]any{"tpm_targets": targetsJSON(t, ta), "tpm_password": "s3cret-pw"})
	e.mustWrite(t, "config/rotate-root", nil)
	if configuredKey(t, e) == rotated {
		t.Fatal("the rotation did not happen")
	}
}

// PCR numbers are not covered by the EK certificate. Out of range, listed
// twice or huge (2^64-1 crashed the process in go-tpm, 2^62 was stored and
// crashed every rotation): a 400 naming the target, nothing changed, and
// such a target already in storage answers 503 instead of crashing.
func TestTPMDuplicateHostilePCRs(t *testing.T) {
	e := newTestEnv(t)
	ca := testenv.NewEKCA(t)
	a, b := testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, ca)
	e.b.env.tpmAddresses = []string{a.Addr, b.Addr}
	e.b.env.tpmEK = loadTPMEKPolicy(ca.Root, "")
	ta, tb := enrolTarget(t, a, ca, tpm.ParentEKRSA), enrolTarget(t, b, ca, tpm.ParentEKRSA)
	e.onNode(a)
	e.mustWrite(t, "config", with(e.baseConfig(), "tink_kek_uri", nil, "key_store", "tpm", "tpm_mode", "duplicate", "tpm_targets", targetsJSON(t, ta)))
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token"})
	before := storageDump(t, e.storage)
	for _, pcrs := range [][]uint{{math.MaxUint64}, {1 << 62}, {1 << 36}, {24}, {7, 7}} {
		hostile := tb
		hostile.PCRs, hostile.PCRDigest = pcrs, make([]byte, 32)
		resp, err := e.request(t, logical.UpdateOperation, "config", map[string]any{"tpm_targets": targetsJSON(t, ta, hostile)})
		wantRefused(t, "pcrs", resp, err, http.StatusBadRequest, "tpm_targets[1]", "pcrs")
	}
	if storageDump(t, e.storage) != before {
		t.Fatal("a refused write changed storage")
	}
	if code, msg := e.credsStatus(t); code != http.StatusOK {
		t.Fatalf("creds after the refused writes: %d %q", code, msg)
	}

	// Stored before these checks existed: refused at engine build.
	cfg, err := e.b.config(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	hostile := tb
	hostile.PCRs, hostile.PCRDigest = []uint{1 << 62}, make([]byte, 32)
	cfg.store.(*tpmParams).Targets = append(cfg.store.(*tpmParams).Targets, hostile)
	entry, err := logical.StorageEntryJSON(configStoragePath, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.storage.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	e.b.dropConfig()
	if code, msg := e.credsStatus(t); code != http.StatusServiceUnavailable || !strings.Contains(msg, "tpm") {
		t.Fatalf("creds with a stored hostile target: %d %q", code, msg)
	}
	resp, err := e.request(t, logical.UpdateOperation, "config/rotate-root", nil)
	wantRefused(t, "rotation with a stored hostile target", resp, err, http.StatusServiceUnavailable, "tpm")
	if read, err := e.request(t, logical.ReadOperation, "config", nil); err != nil || read.IsError() {
		t.Fatalf("config read: %v %v", err, read)
	}
}
