package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// The parents a duplicated key can be wrapped to: endorsement keys by their
// TCG EK Credential Profile template, or the owner's storage root key.
const (
	ParentEKRSA    = "ek-rsa-2048"      // template L-1, certificate at 0x01c00002
	ParentEKECC    = "ek-ecc-p256"      // template L-2, certificate at 0x01c0000a
	ParentEKECC384 = "ek-ecc-p384"      // template H-3, certificate at 0x01c00016
	ParentEKRSAH   = "ek-rsa-2048-high" // template H-1, certificate at 0x01c00012
	ParentEKECCH   = "ek-ecc-p256-high" // template H-2, certificate at 0x01c00014
	ParentSRK      = "srk-ecc-p256"
)

// The high-range EK templates' authPolicy (TCG EK Credential Profile,
// PolicyB: PolicySecret(TPM_RH_ENDORSEMENT) OR PolicyAuthorizeNV).
var (
	policyBSHA256, _ = hex.DecodeString("ca3d0a99a2b93906f7a3342414efcfb3a385d44cd1fd459089d19b5071c0b7a0")
	policyBSHA384, _ = hex.DecodeString("b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12")
)

// highRangeEK is a high-range EK template: no unique, userWithAuth set
// (the user role needs no policy), PolicyB for the admin role.
func highRangeEK(alg tpm2.TPMAlgID, nameAlg tpm2.TPMIAlgHash, policy []byte, aesBits uint16, curve tpm2.TPMECCCurve) tpm2.TPMTPublic {
	sym := tpm2.TPMTSymDefObject{
		Algorithm: tpm2.TPMAlgAES,
		KeyBits:   tpm2.NewTPMUSymKeyBits(tpm2.TPMAlgAES, tpm2.TPMKeyBits(aesBits)),
		Mode:      tpm2.NewTPMUSymMode(tpm2.TPMAlgAES, tpm2.TPMAlgCFB),
	}
	t := tpm2.TPMTPublic{
		Type:    alg,
		NameAlg: nameAlg,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
			AdminWithPolicy: true, Restricted: true, Decrypt: true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
	}
	if alg == tpm2.TPMAlgRSA {
		t.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{Symmetric: sym, KeyBits: 2048})
		t.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{})
		return t
	}
	t.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{Symmetric: sym, CurveID: curve})
	t.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
	return t
}

type parentKind struct {
	hierarchy tpm2.TPMHandle
	template  tpm2.TPMTPublic
	certNV    uint32 // 0: no certificate
	policy    bool   // user role by PolicySecret(TPM_RH_ENDORSEMENT)
}

var parentKinds = map[string]parentKind{
	ParentEKRSA:    {tpm2.TPMRHEndorsement, tpm2.RSAEKTemplate, 0x01c00002, true},
	ParentEKECC:    {tpm2.TPMRHEndorsement, tpm2.ECCEKTemplate, 0x01c0000a, true},
	ParentEKECC384: {tpm2.TPMRHEndorsement, highRangeEK(tpm2.TPMAlgECC, tpm2.TPMAlgSHA384, policyBSHA384, 256, tpm2.TPMECCNistP384), 0x01c00016, false},
	ParentEKRSAH:   {tpm2.TPMRHEndorsement, highRangeEK(tpm2.TPMAlgRSA, tpm2.TPMAlgSHA256, policyBSHA256, 128, 0), 0x01c00012, false},
	ParentEKECCH:   {tpm2.TPMRHEndorsement, highRangeEK(tpm2.TPMAlgECC, tpm2.TPMAlgSHA256, policyBSHA256, 128, tpm2.TPMECCNistP256), 0x01c00014, false},
	ParentSRK:      {tpm2.TPMRHOwner, tpm2.ECCSRKTemplate, 0, false},
}

// ParentKinds lists the parent kinds, sorted.
func ParentKinds() []string {
	out := make([]string, 0, len(parentKinds))
	for k := range parentKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// primaryParent creates the parent of the given kind: primary keys are
// derived from the hierarchy's seed, so the same TPM gives the same key.
func (k *Key) primaryParent(kind string) (*parent, error) {
	pk, ok := parentKinds[kind]
	if !ok {
		return nil, fmt.Errorf("tpm: unknown parent kind %q", kind)
	}
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: pk.hierarchy, InPublic: tpm2.New2B(pk.template)}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("create parent "+kind, err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		flush(k.conn, rsp.ObjectHandle)
		return nil, k.storeError("create parent "+kind, err)
	}
	conn, h := k.conn, rsp.ObjectHandle
	return &parent{handle: h, name: rsp.Name, public: *pub, policy: pk.policy, flush: func() { flush(conn, h) }}, nil
}

// Blob is a key wrapped to one TPM's parent: only that TPM can import it,
// and nothing in it is secret.
type Blob struct {
	Parent     string `json:"parent"`
	ParentName string `json:"parent_name"` // hex
	Public     []byte `json:"public"`      // TPM2B_PUBLIC of the HMAC key
	Duplicate  []byte `json:"duplicate"`   // TPM2B_PRIVATE, outer-wrapped
	Seed       []byte `json:"encrypted_seed"`
	PCRs       []uint `json:"pcrs,omitempty"`
}

// NotEnrolledError: no blob is wrapped to this TPM. Names are its parents'
// Names by kind, for the operator to find (or enrol) the node.
type NotEnrolledError struct {
	Names map[string]string
}

func (e *NotEnrolledError) Error() string {
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(e.Names)) {
		parts = append(parts, kind+"="+e.Names[kind])
	}
	return "tpm: this node's TPM is not enrolled: no blob for its parent " + strings.Join(parts, ", ")
}

// PublicReason is what a client may be told: no Names.
func (e *NotEnrolledError) PublicReason() string { return "this node's TPM is not enrolled" }

// ErrBlobRefused is wrapped when a blob is not one this package would
// make: attributes or policy other than a non-duplicable HMAC key's.
var ErrBlobRefused = errors.New("tpm: blob refused")

// dupTemplate is the public area of a wrapped key. fixedTPM and
// fixedParent must be clear for TPM2_Import to accept it; what keeps the
// imported copy in its TPM is its policy: TPM2_Duplicate needs a policy
// session that satisfies authPolicy with PolicyCommandCode(Duplicate), and
// authPolicy is empty or a PCR (and password) policy without it.
func dupTemplate(policy []byte) tpm2.TPMTPublic {
	t := hmacTemplate(policy)
	t.ObjectAttributes.FixedTPM = false
	t.ObjectAttributes.FixedParent = false
	return t
}

// checkBlobPublic refuses a public area other than dupTemplate(policy).
func checkBlobPublic(pub *tpm2.TPMTPublic, policy []byte) error {
	if !sameTemplate(pub, dupTemplate(policy)) {
		return fmt.Errorf("%w: its public area is not a non-duplicable HMAC key with the expected policy", ErrBlobRefused)
	}
	return nil
}

// policyFor computes in software the key's policy: PolicyPCR over the
// enrolled PCR digest, then PolicyAuthValue when there is a password.
func policyFor(pcrs []uint, pcrDigest []byte, password bool) ([]byte, error) {
	if len(pcrs) == 0 {
		return nil, nil
	}
	if err := CheckPCRs(pcrs); err != nil { // before go-tpm sizes a bitmap by them
		return nil, fmt.Errorf("%w: pcrs: %v", ErrBadTarget, err)
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrs...),
	}}}
	if err := (tpm2.PolicyPCR{Pcrs: sel, PcrDigest: tpm2.TPM2BDigest{Buffer: pcrDigest}}).Update(calc); err != nil {
		return nil, err
	}
	if password {
		if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
			return nil, err
		}
	}
	return calc.Hash().Digest, nil
}

// Wrap duplicates K = "AWS4"+secret to the target's parent, in software:
// the seed is encrypted to the parent's public key (RSA-OAEP or ECDH), the
// sensitive area encrypted and HMACed with keys derived from it (the outer
// wrapper). Verify the target first (VerifyTarget).
func Wrap(target *Target, secret, password string) (_ *Blob, err error) {
	defer recoverInto(&err, ErrBadTarget)
	parentPub, err := target.parentPublic()
	if err != nil {
		return nil, err
	}
	value := []byte("AWS4" + secret)
	defer clear(value)
	if len(secret) == 0 || len(value) > 64 {
		return nil, errors.New("tpm: the secret must be 1 to 60 characters")
	}
	policy, err := policyFor(target.PCRs, target.PCRDigest, password != "")
	if err != nil {
		return nil, err
	}
	seed := make([]byte, 32) // the obfuscation value: the public unique hides K
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	unique := sha256.Sum256(append(append([]byte(nil), seed...), value...))
	pub := dupTemplate(policy)
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{Buffer: unique[:]})
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		return nil, err
	}
	sensitive := tpm2.Marshal(tpm2.TPMTSensitive{
		SensitiveType: tpm2.TPMAlgKeyedHash,
		AuthValue:     tpm2.TPM2BAuth{Buffer: []byte(password)},
		SeedValue:     tpm2.TPM2BDigest{Buffer: seed},
		Sensitive:     tpm2.NewTPMUSensitiveComposite(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BSensitiveData{Buffer: value}),
	})
	defer clear(sensitive)
	ek, err := tpm2.ImportEncapsulationKey(parentPub)
	if err != nil {
		return nil, fmt.Errorf("tpm: target parent: %w", err)
	}
	dup, encSeed, err := tpm2.CreateDuplicate(rand.Reader, ek, name.Buffer, sensitive)
	if err != nil {
		return nil, fmt.Errorf("tpm: wrap: %w", err)
	}
	return &Blob{Parent: target.Parent, ParentName: target.Name, Public: tpm2.Marshal(tpm2.New2B(pub)),
		Duplicate: dup, Seed: encSeed, PCRs: slices.Clone(target.PCRs)}, nil
}

// openDuplicate finds this TPM's blob, imports it once and checks it loads.
// The imported private part lives in memory only: it is this TPM's alone.
func openDuplicate(cfg Config, accessKeyID string) (*Key, error) {
	k := &Key{accessKeyID: accessKeyID, cfg: cfg}
	err := k.connected(func() error {
		if err := k.importOwn(); err != nil {
			return err
		}
		return k.withKey(func(tpm2.NamedHandle, *parent) error { return nil })
	})
	if err != nil {
		return nil, err
	}
	k.identity = identityOf(k.cfg)
	return k, nil
}

// importOwn derives each parent kind the blobs use and imports the blob
// wrapped to this TPM's parent of that kind.
func (k *Key) importOwn() error {
	names := map[string]string{}
	for _, kind := range blobKinds(k.cfg.Blobs) {
		p, err := k.primaryParent(kind)
		if err != nil {
			return err
		}
		names[kind] = hex.EncodeToString(p.name.Buffer)
		i := slices.IndexFunc(k.cfg.Blobs, func(b Blob) bool { return b.Parent == kind && strings.EqualFold(b.ParentName, names[kind]) })
		if i >= 0 {
			err := k.importBlob(p, kind, k.cfg.Blobs[i])
			p.flush()
			return err
		}
		p.flush()
	}
	return &NotEnrolledError{Names: names}
}

func blobKinds(blobs []Blob) []string {
	var kinds []string
	for _, b := range blobs {
		if !slices.Contains(kinds, b.Parent) {
			kinds = append(kinds, b.Parent)
		}
	}
	sort.Strings(kinds)
	return kinds
}

// importBlob checks the blob's public area against the policy this TPM
// computes for its PCRs and password, then runs TPM2_Import.
func (k *Key) importBlob(p *parent, kind string, b Blob) (err error) {
	defer recoverInto(&err, ErrBlobRefused)
	if err := CheckPCRs(b.PCRs); err != nil {
		return fmt.Errorf("%w: pcrs: %v", ErrBlobRefused, err)
	}
	pub2b, pub, err := blobPublic(b.Public)
	if err != nil {
		return err
	}
	k.cfg.PCRs = slices.Clone(b.PCRs)
	policy, err := k.policyDigest()
	if err != nil {
		return err
	}
	if err := checkBlobPublic(pub, policy); err != nil {
		return err
	}
	rsp, err := tpm2.Import{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: p.auth()},
		ObjectPublic: *pub2b,
		Duplicate:    tpm2.TPM2BPrivate{Buffer: b.Duplicate},
		InSymSeed:    tpm2.TPM2BEncryptedSecret{Buffer: b.Seed},
	}.Execute(k.conn)
	if err != nil {
		return k.storeError("import this node's blob", err)
	}
	k.cfg.Public = b.Public
	k.cfg.Private = tpm2.Marshal(rsp.OutPrivate)
	k.cfg.ParentName = append([]byte(nil), p.name.Buffer...)
	k.cfg.ParentKind = kind
	k.dupPolicy, k.duplicated = policy, true
	return nil
}

// duplicationChecked: public is the area this key's import checked.
func (k *Key) duplicationChecked(public []byte) bool {
	if !k.duplicated || !bytes.Equal(public, k.cfg.Public) {
		return false
	}
	props, err := PropertiesOf(public)
	return err == nil && bytes.Equal(props.AuthPolicy, k.dupPolicy)
}

// NodeStatus is what this TPM makes of a set of blobs: its parents' Names
// by kind, the blob wrapped to it (-1: none), and why it does not load.
type NodeStatus struct {
	Names   map[string]string
	Blob    int
	Problem error
}

// Probe imports and loads this TPM's blob in a fresh session, as a node
// does when it builds its engine, and says how that went.
func Probe(ctx context.Context, cfg Config, accessKeyID string) NodeStatus {
	st := NodeStatus{Names: map[string]string{}, Blob: -1}
	k, err := Open(ctx, cfg, accessKeyID)
	var ne *NotEnrolledError
	switch {
	case err == nil:
		st.Names[k.cfg.ParentKind] = hex.EncodeToString(k.cfg.ParentName)
		st.Blob = slices.IndexFunc(cfg.Blobs, func(b Blob) bool {
			return b.Parent == k.cfg.ParentKind && strings.EqualFold(b.ParentName, st.Names[b.Parent])
		})
		k.Close()
	case errors.As(err, &ne):
		st.Names, st.Problem = ne.Names, err
	default:
		st.Problem = err
	}
	return st
}

// CheckBlob refuses, before any TPM sees it, a blob that is not wrapped to
// target or whose public area is not the non-duplicable HMAC key with the
// policy the target's enrolment and the password give.
func CheckBlob(target *Target, b *Blob, password bool) (err error) {
	defer recoverInto(&err, ErrBlobRefused)
	if b.Parent != target.Parent || !strings.EqualFold(b.ParentName, target.Name) {
		return fmt.Errorf("%w: not wrapped to this target", ErrBlobRefused)
	}
	if !slices.Equal(b.PCRs, target.PCRs) {
		return fmt.Errorf("%w: its PCRs are not the target's", ErrBlobRefused)
	}
	_, pub, err := blobPublic(b.Public)
	if err != nil {
		return err
	}
	policy, err := policyFor(target.PCRs, target.PCRDigest, password)
	if err != nil {
		return err
	}
	return checkBlobPublic(pub, policy)
}

// blobPublic decodes a blob's public area, as sent and as contents.
func blobPublic(public []byte) (*tpm2.TPM2BPublic, *tpm2.TPMTPublic, error) {
	pub2b, err := tpm2.Unmarshal[tpm2.TPM2BPublic](public)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: public area: %v", ErrBlobRefused, err)
	}
	pub, err := pub2b.Contents()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: public area: %v", ErrBlobRefused, err)
	}
	return pub2b, pub, nil
}
