package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// Properties are a key's attributes as its public area states them; the
// TPM enforces them for the life of the object.
type Properties struct {
	FixedTPM, FixedParent, SensitiveDataOrigin bool
	UserWithAuth, AdminWithPolicy, NoDA        bool
	EncryptedDuplication, Restricted           bool
	Decrypt, SignEncrypt                       bool
	// AuthPolicy is the policy digest; empty when there is none.
	AuthPolicy []byte
	// Duplicated is Evidence.Duplicated: the policy was checked at import
	// to hold no duplication branch, which the public area cannot show.
	Duplicated bool
}

// PropertiesOf decodes a TPM2B_PUBLIC.
func PropertiesOf(public []byte) (Properties, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](public)
	if err != nil {
		return Properties{}, fmt.Errorf("tpm: public area: %w", err)
	}
	c, err := pub.Contents()
	if err != nil {
		return Properties{}, fmt.Errorf("tpm: public area: %w", err)
	}
	a := c.ObjectAttributes
	return Properties{
		FixedTPM: a.FixedTPM, FixedParent: a.FixedParent, SensitiveDataOrigin: a.SensitiveDataOrigin,
		UserWithAuth: a.UserWithAuth, AdminWithPolicy: a.AdminWithPolicy, NoDA: a.NoDA,
		EncryptedDuplication: a.EncryptedDuplication, Restricted: a.Restricted,
		Decrypt: a.Decrypt, SignEncrypt: a.SignEncrypt,
		AuthPolicy: append([]byte(nil), c.AuthPolicy.Buffer...),
	}, nil
}

// Exposures names what would let the key leave the TPM: an object without
// fixedTPM or without fixedParent can be duplicated (TPM2_Duplicate
// refuses only objects with fixedParent set, and fixedTPM keeps a copy
// from ever being loaded in another TPM).
func (p Properties) Exposures() []string {
	var out []string
	if p.Duplicated {
		// TPM2_Import requires fixedTPM and fixedParent clear; TPM2_Duplicate
		// then needs a policy session that satisfies authPolicy with
		// PolicyCommandCode(TPM2_Duplicate), which the checked policy lacks,
		// and the parent is a fixedTPM primary key.
		return nil
	}
	if !p.FixedTPM {
		out = append(out, "fixedTPM is clear: the key may be duplicated to another TPM")
	}
	if !p.FixedParent {
		out = append(out, "fixedParent is clear: TPM2_Duplicate may move the key")
	}
	return out
}

// NameOf computes an object's Name from its TPM2B_PUBLIC: nameAlg, then
// the nameAlg digest of the TPMT_PUBLIC bytes. Only SHA-256 is supported.
func NameOf(public []byte) ([]byte, error) {
	if len(public) < 4 || int(binary.BigEndian.Uint16(public)) != len(public)-2 {
		return nil, errors.New("tpm: public area: bad size")
	}
	area := public[2:]
	// TPMT_PUBLIC: type (2 bytes), then nameAlg (2 bytes).
	if alg := tpm2.TPMAlgID(binary.BigEndian.Uint16(area[2:4])); alg != tpm2.TPMAlgSHA256 {
		return nil, fmt.Errorf("tpm: public area: nameAlg 0x%04x, not SHA-256", uint16(alg))
	}
	sum := sha256.Sum256(area)
	return append([]byte{0x00, 0x0b}, sum[:]...), nil
}

// Certified is what VerifyCertification established.
type Certified struct {
	Properties
	Name   []byte // the certified key's Name
	AKName []byte // the Name of the key that signed: compare it with the one pinned
}

// VerifyCertification checks Evidence from the public parts alone: the
// attestation key is a restricted signing key whose Name matches its
// public area; its ECDSA signature over CertifyInfo holds; CertifyInfo is
// a TPM-generated TPMS_ATTEST of type certify, over nonce, naming the
// Name computed from the key's public area. The caller must still decide
// whether it trusts AKName (pinned at enrolment, or tied to an EK
// certificate by ActivateCredential): nothing here proves that.
func VerifyCertification(ev *Evidence, nonce []byte) (*Certified, error) {
	akPub, err := verifyAK(ev)
	if err != nil {
		return nil, err
	}
	if err := verifyECDSA(akPub, ev.CertifyInfo, ev.Signature); err != nil {
		return nil, err
	}
	name, err := NameOf(ev.Public)
	if err != nil {
		return nil, err
	}
	if err := verifyAttest(ev.CertifyInfo, nonce, name); err != nil {
		return nil, err
	}
	props, err := PropertiesOf(ev.Public)
	if err != nil {
		return nil, err
	}
	return &Certified{Properties: props, Name: name, AKName: append([]byte(nil), ev.AKName...)}, nil
}

// verifyAK checks the attestation key's Name and attributes and returns
// its ECDSA public key.
func verifyAK(ev *Evidence) (*ecdsa.PublicKey, error) {
	name, err := NameOf(ev.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("attestation key: %w", err)
	}
	if !bytes.Equal(name, ev.AKName) {
		return nil, errors.New("tpm: the attestation key's Name does not match its public area")
	}
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](ev.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("tpm: attestation key: %w", err)
	}
	c, err := pub.Contents()
	if err != nil {
		return nil, fmt.Errorf("tpm: attestation key: %w", err)
	}
	if a := c.ObjectAttributes; !a.Restricted || !a.SignEncrypt || !a.FixedTPM || a.Decrypt {
		return nil, errors.New("tpm: the attestation key is not a restricted, fixedTPM signing key: it could sign what the TPM did not generate")
	}
	parms, err := c.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("tpm: attestation key is not ECC: %w", err)
	}
	point, err := c.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("tpm: attestation key: %w", err)
	}
	return tpm2.ECDSAPub(parms, point)
}

func verifyECDSA(pub *ecdsa.PublicKey, signed, signature []byte) error {
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](signature)
	if err != nil {
		return fmt.Errorf("tpm: signature: %w", err)
	}
	if sig.SigAlg != tpm2.TPMAlgECDSA {
		return fmt.Errorf("tpm: signature algorithm 0x%04x, not ECDSA", uint16(sig.SigAlg))
	}
	e, err := sig.Signature.ECDSA()
	if err != nil {
		return fmt.Errorf("tpm: signature: %w", err)
	}
	if e.Hash != tpm2.TPMAlgSHA256 {
		return errors.New("tpm: signature digest is not SHA-256")
	}
	digest := sha256.Sum256(signed)
	r, s := new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errors.New("tpm: the attestation key's signature over the certification does not verify")
	}
	return nil
}

// verifyAttest checks the signed TPMS_ATTEST.
func verifyAttest(info, nonce, name []byte) error {
	// The magic first: go-tpm refuses to parse anything else.
	if len(info) < 4 || binary.BigEndian.Uint32(info) != uint32(tpm2.TPMGeneratedValue) {
		return errors.New("tpm: the certification is not TPM-generated (magic is not TPM_GENERATED_VALUE)")
	}
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](info)
	if err != nil {
		return fmt.Errorf("tpm: certification: %w", err)
	}
	if att.Type != tpm2.TPMSTAttestCertify {
		return errors.New("tpm: the attestation is not a TPM2_Certify")
	}
	if !bytes.Equal(att.ExtraData.Buffer, nonce) {
		return errors.New("tpm: the certification is over another nonce")
	}
	cert, err := att.Attested.Certify()
	if err != nil {
		return fmt.Errorf("tpm: certification: %w", err)
	}
	if !bytes.Equal(cert.Name.Buffer, name) {
		return errors.New("tpm: the certification names another object than the public area given")
	}
	return nil
}
