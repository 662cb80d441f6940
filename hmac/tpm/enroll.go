package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// Target is what a wrapper needs about one TPM, as `aws-hmac tpm enroll`
// prints it: the parent to wrap to, its Name, and the EK certificate that
// proves the parent lives in a real TPM. None of it is secret.
type Target struct {
	Parent        string   `json:"parent"`
	ParentPublic  []byte   `json:"parent_public"` // TPM2B_PUBLIC
	Name          string   `json:"parent_name"`   // hex
	EKCertificate []byte   `json:"ek_certificate,omitempty"`
	EKChain       [][]byte `json:"ek_chain,omitempty"` // intermediates, DER
	// PCRs and PCRDigest seal the key to this node's PCR values at
	// enrolment: SHA-256 of the SHA-256 bank's values, in PCR order.
	PCRs      []uint `json:"pcrs,omitempty"`
	PCRDigest []byte `json:"pcr_digest,omitempty"`
}

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidEKCertificate  = asn1.ObjectIdentifier{2, 23, 133, 8, 1} // tcg-kp-EKCertificate
)

// Errors of VerifyTarget, for callers that answer them differently.
var (
	ErrUncertified = errors.New("tpm: the target has no EK certificate")
	ErrBadTarget   = errors.New("tpm: target refused")
)

// Enroll reads what a wrapper needs about the TPM cfg names: the parent of
// the given kind, its Name, its EK certificate when the TPM holds one, and
// the PCR digest when pcrs are given.
func Enroll(ctx context.Context, cfg Config, kind string, pcrs []uint) (*Target, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pk, ok := parentKinds[kind]
	if !ok {
		return nil, fmt.Errorf("tpm: unknown parent kind %q (one of %v)", kind, ParentKinds())
	}
	if err := CheckPCRs(pcrs); err != nil {
		return nil, fmt.Errorf("tpm: pcrs: %w", err)
	}
	k := &Key{cfg: cfg}
	var t *Target
	err := k.connected(func() error {
		p, err := k.primaryParent(kind)
		if err != nil {
			return err
		}
		defer p.flush()
		t = &Target{Parent: kind, ParentPublic: tpm2.Marshal(tpm2.New2B(p.public)), Name: hex.EncodeToString(p.name.Buffer)}
		if pk.certNV != 0 {
			if t.EKCertificate, err = readNV(k.conn, pk.certNV); err != nil {
				return k.storeError("read EK certificate", err)
			}
		}
		if len(pcrs) > 0 {
			t.PCRs = slices.Sorted(slices.Values(pcrs))
			t.PCRDigest, err = k.pcrDigest(pcrs)
		}
		return err
	})
	return t, err
}

// pcrDigest is SHA-256 over the SHA-256 bank's values of pcrs, in order.
func (k *Key) pcrDigest(pcrs []uint) ([]byte, error) {
	sorted := slices.Sorted(slices.Values(pcrs))
	h := sha256.New()
	for _, pcr := range sorted {
		if pcr > 23 {
			return nil, fmt.Errorf("tpm: PCR %d out of range 0-23", pcr)
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
			Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcr),
		}}}}.Execute(k.conn)
		if err != nil {
			return nil, k.storeError("read PCRs", err)
		}
		if len(rsp.PCRValues.Digests) != 1 {
			return nil, fmt.Errorf("tpm: PCR %d has no SHA-256 value", pcr)
		}
		h.Write(rsp.PCRValues.Digests[0].Buffer)
	}
	return h.Sum(nil), nil
}

// parentPublic checks the target's parent against its kind's template and
// its Name, and its PCRs (which no certificate covers: whoever lists the
// target chooses them), and returns the parent.
func (t *Target) parentPublic() (_ *tpm2.TPMTPublic, err error) {
	defer recoverInto(&err, ErrBadTarget)
	pk, ok := parentKinds[t.Parent]
	if !ok {
		return nil, fmt.Errorf("%w: unknown parent kind (one of %v)", ErrBadTarget, ParentKinds())
	}
	if err := CheckPCRs(t.PCRs); err != nil {
		return nil, fmt.Errorf("%w: pcrs: %v", ErrBadTarget, err)
	}
	pub2b, err := tpm2.Unmarshal[tpm2.TPM2BPublic](t.ParentPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: parent_public: %v", ErrBadTarget, err)
	}
	pub, err := pub2b.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: parent_public: %v", ErrBadTarget, err)
	}
	// The parent must be exactly the kind's template, but for its key.
	if !sameTemplate(pub, pk.template) {
		return nil, fmt.Errorf("%w: parent_public is not the %s template", ErrBadTarget, t.Parent)
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: parent_public: %v", ErrBadTarget, err)
	}
	if hex.EncodeToString(name.Buffer) != t.Name {
		return nil, fmt.Errorf("%w: parent_name is not the Name of parent_public", ErrBadTarget)
	}
	if len(t.PCRs) > 0 && len(t.PCRDigest) != sha256.Size {
		return nil, fmt.Errorf("%w: pcr_digest must be a SHA-256 digest when pcrs are set", ErrBadTarget)
	}
	return pub, nil
}

// VerifyTarget accepts a target whose parent is an endorsement key
// certified by a CA in roots, with the certificate's key equal to the
// parent's; a target without a certificate (an SRK, or a TPM without an EK
// certificate) only when its parent Name is one of pinned (hex). Without
// this check anyone who may name a target could name a software "TPM" and
// receive the next wrapped secret; a mere allowance of uncertified targets
// would still let them, so the Names are pinned by whoever vouches for
// those TPMs.
func VerifyTarget(t *Target, roots *x509.CertPool, pinned []string) (err error) {
	defer recoverInto(&err, ErrBadTarget)
	pub, err := t.parentPublic()
	if err != nil {
		return err
	}
	if len(t.EKCertificate) == 0 || parentKinds[t.Parent].certNV == 0 {
		if !slices.ContainsFunc(pinned, func(n string) bool { return strings.EqualFold(n, t.Name) }) {
			return ErrUncertified
		}
		return nil
	}
	if roots == nil {
		return fmt.Errorf("%w: no EK CA bundle to check its certificate against", ErrBadTarget)
	}
	cert, err := x509.ParseCertificate(t.EKCertificate)
	if err != nil {
		return fmt.Errorf("%w: ek_certificate: %v", ErrBadTarget, err)
	}
	inter := x509.NewCertPool()
	for _, der := range t.EKChain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%w: ek_chain: %v", ErrBadTarget, err)
		}
		inter.AddCert(c)
	}
	// EK certificates mark their subject alternative name (the TPM's
	// manufacturer and model, as a directory name) critical; it names no
	// host to check. Any other unhandled critical extension still fails.
	cert.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(cert.UnhandledCriticalExtensions),
		func(oid asn1.ObjectIdentifier) bool { return oid.Equal(oidSubjectAltName) })
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: ek_certificate does not chain to the EK CA bundle: %v", ErrBadTarget, err)
	}
	// A certificate that names its uses must name the EK's: a TLS or
	// code-signing certificate from the same CA is not an EK's.
	if (len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0) &&
		!slices.ContainsFunc(cert.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(oidEKCertificate) }) {
		return fmt.Errorf("%w: ek_certificate is not an EK certificate (extended key usage)", ErrBadTarget)
	}
	return sameKey(cert.PublicKey, pub)
}

// sameKey: the certificate certifies the parent's own key.
func sameKey(certKey crypto.PublicKey, pub *tpm2.TPMTPublic) error {
	mismatch := fmt.Errorf("%w: ek_certificate certifies another key than parent_public", ErrBadTarget)
	switch ck := certKey.(type) {
	case *rsa.PublicKey:
		detail, err := pub.Parameters.RSADetail()
		if err != nil {
			return mismatch
		}
		unique, err := pub.Unique.RSA()
		if err != nil {
			return mismatch
		}
		tk, err := tpm2.RSAPub(detail, unique)
		if err != nil || !tk.Equal(ck) {
			return mismatch
		}
	case *ecdsa.PublicKey:
		detail, err := pub.Parameters.ECCDetail()
		if err != nil {
			return mismatch
		}
		unique, err := pub.Unique.ECC()
		if err != nil {
			return mismatch
		}
		tk, err := tpm2.ECDSAPub(detail, unique)
		if err != nil || !tk.Equal(ck) {
			return mismatch
		}
	default:
		return mismatch
	}
	return nil
}

// sameTemplate: pub is template but for its unique field. The types are
// compared first: a unique of another type would not marshal.
func sameTemplate(pub *tpm2.TPMTPublic, template tpm2.TPMTPublic) (same bool) {
	if pub.Type != template.Type {
		return false
	}
	defer func() {
		if recover() != nil { // a union go-tpm cannot marshal: not the template
			same = false
		}
	}()
	got := *pub
	got.Unique = template.Unique
	return bytes.Equal(tpm2.Marshal(got), tpm2.Marshal(template))
}
