package tpm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

// simTPM is one simulator instance, a TPM as a node sees it: its state
// lasts across connections until stop. Only one runs at a time (the
// simulator is a process-wide singleton); another seed is another TPM.
func simTPM(t *testing.T, seed int64) (cfg Config, stop func()) {
	t.Helper()
	sim, err := simulator.GetWithFixedSeedInsecure(seed)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { sim.Close() }) }
	t.Cleanup(stop)
	return Config{Device: "simulator", Open: func() (transport.TPMCloser, error) {
		return transport.FromReadWriteCloser(keepOpen{sim}), nil
	}}, stop
}

// keepOpen ends a connection without ending the simulator.
type keepOpen struct{ io.ReadWriter }

func (keepOpen) Close() error { return nil }

func enroll(t *testing.T, cfg Config, kind string, pcrs ...uint) *Target {
	t.Helper()
	target, err := Enroll(context.Background(), cfg, kind, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyTarget(target, nil, []string{target.Name}); err != nil {
		t.Fatal(err)
	}
	return target
}

func wrap(t *testing.T, target *Target, password string) Blob {
	t.Helper()
	b, err := Wrap(target, keytest.Secret, password)
	if err != nil {
		t.Fatal(err)
	}
	keytest.NoSecretIn(t, "a wrapped blob", append(append(append([]byte(nil), b.Public...), b.Duplicate...), b.Seed...))
	return *b
}

func openBlobs(cfg Config, password string, blobs ...Blob) (*Key, error) {
	cfg.Password, cfg.Blobs = password, blobs
	return Open(context.Background(), cfg, keytest.AccessKeyID)
}

// Wrapped in software, imported by the TPM, the key HMACs as the software
// key does, for each parent kind.
func TestDuplicateWrapImportHMAC(t *testing.T) {
	node, _ := simTPM(t, 101)
	for _, kind := range ParentKinds() {
		t.Run(kind, func(t *testing.T) {
			for _, password := range []string{"", "key-auth-value"} {
				blob := wrap(t, enroll(t, node, kind), password)
				k, err := openBlobs(node, password, blob)
				if err != nil {
					t.Fatal(err)
				}
				keytest.CheckSuite(t, k)
				keytest.Hammer(t, k, 2, 3) // long messages go through an HMAC sequence
				k.Close()
			}
		})
	}
}

// Sealed to the PCR values enrolled, with the password in the policy.
func TestDuplicatePCRSealed(t *testing.T) {
	node, _ := simTPM(t, 102)
	blob := wrap(t, enroll(t, node, ParentEKECC, 16), "pw")
	k, err := openBlobs(node, "pw", blob)
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, k)
	k.Close()
	wrong, err := openBlobs(node, "wrong", blob) // the password is checked on use
	if err == nil {
		_, err = wrong.HMAC(context.Background(), []byte(keytest.Date))
		wrong.Close()
	}
	if !errors.Is(err, hmac.ErrAuth) {
		t.Fatalf("a wrong password: %v, want ErrAuth", err)
	}
	// Enrolled with other PCR values: the policy this TPM computes differs.
	other := enroll(t, node, ParentEKECC, 16)
	other.PCRDigest = make([]byte, 32)
	if _, err := openBlobs(node, "pw", wrap(t, other, "pw")); !errors.Is(err, ErrBlobRefused) {
		t.Fatalf("a blob sealed to other PCR values: %v", err)
	}
}

// A blob wrapped to one TPM is no use to another: it finds no blob of its
// own, and a blob relabelled with its Name fails the TPM's integrity check.
func TestDuplicateOtherTPMRefuses(t *testing.T) {
	kinds := []string{ParentEKRSA, ParentEKECC, ParentEKECC384}
	a, stopA := simTPM(t, 201)
	blobs := map[string]Blob{}
	for _, kind := range kinds {
		blobs[kind] = wrap(t, enroll(t, a, kind), "")
		k, err := openBlobs(a, "", blobs[kind])
		if err != nil {
			t.Fatalf("%s: TPM a: %v", kind, err)
		}
		keytest.CheckSuite(t, k)
		k.Close()
	}
	stopA()
	b, _ := simTPM(t, 202)
	for _, kind := range kinds {
		blob := blobs[kind]
		_, err := openBlobs(b, "", blob)
		var ne *NotEnrolledError
		if !errors.As(err, &ne) || ne.Names[kind] == "" || ne.Names[kind] == blob.ParentName {
			t.Fatalf("%s: TPM b opened TPM a's blob: %v", kind, err)
		}
		relabelled := blob
		relabelled.ParentName = ne.Names[kind]
		if k, err := openBlobs(b, "", relabelled); err == nil {
			k.Close()
			t.Fatalf("%s: TPM b imported a blob wrapped to TPM a", kind)
		}
	}
}

// A changed byte anywhere in the blob is refused.
func TestDuplicateTamperedRefused(t *testing.T) {
	node, _ := simTPM(t, 301)
	blob := wrap(t, enroll(t, node, ParentEKECC), "")
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return c
	}
	cases := map[string]Blob{}
	for _, i := range []int{0, 5, len(blob.Duplicate) - 1} {
		c := blob
		c.Duplicate = flip(blob.Duplicate, i)
		cases["duplicate byte "+hex.EncodeToString([]byte{byte(i)})] = c
	}
	seed := blob
	seed.Seed = flip(blob.Seed, len(blob.Seed)-1)
	cases["seed"] = seed
	pub := blob
	pub.Public = flip(blob.Public, len(blob.Public)-1) // the unique: another Name
	cases["public unique"] = pub
	for name, c := range cases {
		if k, err := openBlobs(node, "", c); err == nil {
			k.Close()
			t.Fatalf("%s tampered: imported", name)
		}
	}
}

// wrapPublic wraps K with the public area given, bypassing Wrap's template.
func wrapPublic(t *testing.T, target *Target, pub tpm2.TPMTPublic) Blob {
	t.Helper()
	parentPub, err := target.parentPublic()
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	value := []byte("AWS4" + keytest.Secret)
	unique := sha256.Sum256(append(append([]byte(nil), seed...), value...))
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{Buffer: unique[:]})
	name, _ := tpm2.ObjectName(&pub)
	sensitive := tpm2.Marshal(tpm2.TPMTSensitive{
		SensitiveType: tpm2.TPMAlgKeyedHash,
		SeedValue:     tpm2.TPM2BDigest{Buffer: seed},
		Sensitive:     tpm2.NewTPMUSensitiveComposite(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BSensitiveData{Buffer: value}),
	})
	ek, err := tpm2.ImportEncapsulationKey(parentPub)
	if err != nil {
		t.Fatal(err)
	}
	dup, encSeed, err := tpm2.CreateDuplicate(rand.Reader, ek, name.Buffer, sensitive)
	if err != nil {
		t.Fatal(err)
	}
	return Blob{Parent: target.Parent, ParentName: target.Name, Public: tpm2.Marshal(tpm2.New2B(pub)), Duplicate: dup, Seed: encSeed}
}

func duplicationPolicy(t *testing.T) []byte {
	t.Helper()
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := (tpm2.PolicyCommandCode{Code: tpm2.TPMCCDuplicate}).Update(calc); err != nil {
		t.Fatal(err)
	}
	return calc.Hash().Digest
}

// A key its wrapper gave a duplication policy could be exported again from
// the TPM that imports it: it is refused before the import.
func TestDuplicationPolicyRefused(t *testing.T) {
	node, _ := simTPM(t, 401)
	target := enroll(t, node, ParentEKECC)
	for name, pub := range map[string]tpm2.TPMTPublic{
		"duplication policy": func() tpm2.TPMTPublic {
			p := dupTemplate(duplicationPolicy(t))
			p.ObjectAttributes.UserWithAuth = true
			return p
		}(),
		"decrypt attribute": func() tpm2.TPMTPublic { p := dupTemplate(nil); p.ObjectAttributes.Decrypt = true; return p }(),
	} {
		_, err := openBlobs(node, "", wrapPublic(t, target, pub))
		if !errors.Is(err, ErrBlobRefused) {
			t.Fatalf("%s: %v, want ErrBlobRefused", name, err)
		}
	}
}

// duplicateAgain tries TPM2_Duplicate on the key k imported, in the clear
// (new parent TPM_RH_NULL), with a policy session that runs pre (the PCR
// policy, say) then PolicyCommandCode(Duplicate).
func duplicateAgain(t *testing.T, k *Key, pre func(transport.TPM, tpm2.TPMISHPolicy) error, noCommandCode ...bool) error {
	t.Helper()
	return k.connected(func() error {
		return k.withKey(func(h tpm2.NamedHandle, _ *parent) error {
			policy := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tp transport.TPM, s tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
				if pre != nil {
					if err := pre(tp, s); err != nil {
						return err
					}
				}
				if len(noCommandCode) > 0 {
					return nil
				}
				_, err := tpm2.PolicyCommandCode{PolicySession: s, Code: tpm2.TPMCCDuplicate}.Execute(tp)
				return err
			})
			_, err := tpm2.Duplicate{
				ObjectHandle:    tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: policy},
				NewParentHandle: tpm2.TPMRHNull,
				Symmetric:       tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
			}.Execute(k.conn)
			return err
		})
	})
}

// The imported copy cannot be exported again: TPM2_Duplicate needs a
// policy its authPolicy does not hold. A key given that policy (imported
// without the check) is duplicated, so the refusal is the policy's doing.
func TestReduplicationFails(t *testing.T) {
	node, _ := simTPM(t, 501)
	target := enroll(t, node, ParentEKECC)
	k, err := openBlobs(node, "", wrap(t, target, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := duplicateAgain(t, k, nil); err == nil {
		t.Fatal("the imported key was duplicated")
	}
	sealedTarget := enroll(t, node, ParentEKECC, 16)
	sealed, err := openBlobs(node, "", wrap(t, sealedTarget, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer sealed.Close()
	pcrPolicy := func(tp transport.TPM, s tpm2.TPMISHPolicy) error { return sealed.applyPolicy(tp, s) }
	if err := duplicateAgain(t, sealed, pcrPolicy); err == nil {
		t.Fatal("the PCR-sealed imported key was duplicated")
	}
	// The PCR policy alone satisfies authPolicy, but not for TPM2_Duplicate.
	if err := duplicateAgain(t, sealed, pcrPolicy, true); err == nil {
		t.Fatal("the PCR-sealed imported key was duplicated with its use policy")
	}

	mutant := &Key{accessKeyID: keytest.AccessKeyID, cfg: node}
	mutant.cfg.Blobs = []Blob{wrapPublic(t, target, dupTemplate(duplicationPolicy(t)))}
	err = mutant.connected(func() error {
		p, err := mutant.primaryParent(ParentEKECC)
		if err != nil {
			return err
		}
		defer p.flush()
		b := mutant.cfg.Blobs[0]
		pub2b, _ := tpm2.Unmarshal[tpm2.TPM2BPublic](b.Public)
		rsp, err := tpm2.Import{ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.auth()}, ObjectPublic: *pub2b,
			Duplicate: tpm2.TPM2BPrivate{Buffer: b.Duplicate}, InSymSeed: tpm2.TPM2BEncryptedSecret{Buffer: b.Seed}}.Execute(mutant.conn)
		if err != nil {
			return err
		}
		mutant.cfg.Public, mutant.cfg.Private, mutant.cfg.ParentKind = b.Public, tpm2.Marshal(rsp.OutPrivate), ParentEKECC
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := duplicateAgain(t, mutant, nil); err != nil {
		t.Fatalf("a key with a duplication policy was not duplicated (the test proves nothing): %v", err)
	}
}

// TPM2_Import refuses an object with fixedTPM or fixedParent set: a
// duplicated key cannot carry them, which is why its policy must hold.
func TestImportRefusesFixedAttributes(t *testing.T) {
	node, _ := simTPM(t, 601)
	target := enroll(t, node, ParentEKECC)
	pub := dupTemplate(nil)
	pub.ObjectAttributes.FixedTPM, pub.ObjectAttributes.FixedParent = true, true
	blob := wrapPublic(t, target, pub)
	k := &Key{cfg: node}
	err := k.connected(func() error {
		p, err := k.primaryParent(ParentEKECC)
		if err != nil {
			return err
		}
		defer p.flush()
		pub2b, _ := tpm2.Unmarshal[tpm2.TPM2BPublic](blob.Public)
		_, err = tpm2.Import{ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.auth()}, ObjectPublic: *pub2b,
			Duplicate: tpm2.TPM2BPrivate{Buffer: blob.Duplicate}, InSymSeed: tpm2.TPM2BEncryptedSecret{Buffer: blob.Seed}}.Execute(k.conn)
		return err
	})
	if err == nil {
		t.Fatal("the TPM imported a fixedTPM|fixedParent object")
	}
	t.Log(err)
}

// A duplicated key's attestation: no exposure (the policy was checked at
// import), a statement that says why; the public area alone, as an
// offline verifier decodes it, still shows the clear attributes.
func TestDuplicatedAttestation(t *testing.T) {
	node, _ := simTPM(t, 901)
	for _, pcrs := range [][]uint{nil, {16}} {
		k, err := openBlobs(node, "pw", wrap(t, enroll(t, node, ParentEKECC, pcrs...), "pw"))
		if err != nil {
			t.Fatal(err)
		}
		ans, err := k.Attest(context.Background(), []byte("a fresh nonce"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ans.Exposures) != 0 || ans.Report["imported_by_duplication"] != true || ans.Report["duplicable"] != false ||
			!strings.Contains(ans.Statement, "imported by duplication") {
			t.Fatalf("pcrs %v: exposures %v, report %v, statement %q", pcrs, ans.Exposures, ans.Report, ans.Statement)
		}
		if e, err := k.Exposures(context.Background()); err != nil || len(e) != 0 {
			t.Fatalf("pcrs %v: periodic check: %v %v", pcrs, e, err)
		}
		offline, _ := PropertiesOf(k.cfg.Public)
		if len(offline.Exposures()) == 0 {
			t.Fatal("the public area alone vouches for the policy")
		}
		k.Close()
	}
}
