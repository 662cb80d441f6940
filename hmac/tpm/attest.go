package tpm

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// MaxNonce is the longest nonce Certify takes: TPM2B_DATA holds a digest,
// at most SHA-512's 64 bytes.
const MaxNonce = 64

// AKTemplate is the attestation key's template: an ECC P-256 restricted
// signing key (ECDSA with SHA-256), fixedTPM, fixedParent,
// sensitiveDataOrigin, userWithAuth, no authPolicy, empty unique — what
// tpm2-tools makes of
//
//	tpm2_createprimary -C e -g sha256 -G ecc256:ecdsa-sha256:null \
//	  -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'
//
// Created as a primary key in the endorsement hierarchy, it is derived from
// the TPM's endorsement seed: the same TPM gives the same key, and the same
// Name, until that seed changes (TPM2_ChangeEPS; TPM2_Clear keeps it), so a
// verifier can pin its Name.
var AKTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		Restricted: true, SignEncrypt: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// EK templates and the NV indices of their certificates, from the TCG EK
// Credential Profile (low range).
const (
	EKECC = "ecc-nist-p256" // template L-2, certificate at 0x01c0000a
	EKRSA = "rsa-2048"      // template L-1, certificate at 0x01c00002
)

var ekTemplates = map[string]struct {
	template tpm2.TPMTPublic
	certNV   uint32
}{
	EKECC: {tpm2.ECCEKTemplate, 0x01c0000a},
	EKRSA: {tpm2.RSAEKTemplate, 0x01c00002},
}

// Evidence is a TPM2_Certify of the key by the attestation key, and what
// ties the attestation key to the TPM. Every field is public.
type Evidence struct {
	Public      []byte // the key's TPM2B_PUBLIC
	Name        []byte // the key's Name, as the TPM computed it on loading
	AKPublic    []byte // the attestation key's TPM2B_PUBLIC
	AKName      []byte
	CertifyInfo []byte // the TPMS_ATTEST the TPM signed
	Signature   []byte // TPMT_SIGNATURE over CertifyInfo
	// EKs are the endorsement keys by template (EKECC always; EKRSA when the
	// TPM holds its certificate), with their certificates when it has one.
	EKs map[string]EK
	// Duplicated: the key was imported by duplication (tpm_mode=duplicate)
	// under a fixedTPM endorsement or storage primary key, its authPolicy
	// checked before the import to be empty or this TPM's PCR policy.
	Duplicated bool
}

// EK is an endorsement key's public area and certificate (DER, as stored
// in NV; nil when the TPM holds none).
type EK struct {
	Public      []byte // TPM2B_PUBLIC
	Certificate []byte
}

// Certify has the attestation key certify the key over nonce (TPM2_Certify,
// qualifyingData = nonce), and reads the endorsement keys. Every transient
// handle it creates is flushed.
func (k *Key) Certify(ctx context.Context, nonce []byte) (*Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(nonce) > MaxNonce {
		return nil, fmt.Errorf("tpm: nonce longer than %d bytes", MaxNonce)
	}
	var ev *Evidence
	err := k.connected(func() error {
		err := k.withKey(func(h tpm2.NamedHandle, p *parent) error {
			var err error
			ev, err = k.certify(h, p, nonce)
			return err
		})
		if err == nil {
			ev.EKs, err = k.endorsementKeys()
			ev.Duplicated = k.duplicationChecked(ev.Public)
		}
		return err
	})
	return ev, err
}

func (k *Key) certify(h tpm2.NamedHandle, p *parent, nonce []byte) (*Evidence, error) {
	public, err := k.publicBlob(h)
	if err != nil {
		return nil, err
	}
	ak, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(AKTemplate)}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("create attestation key", err)
	}
	defer flush(k.conn, ak.ObjectHandle)
	// The key's ADMIN role: its password, in a salted session (it has no
	// adminWithPolicy, so a PCR-sealed key certifies this way too).
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: k.session(p, encryptIn, []byte(k.cfg.Password))},
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("certify key", err)
	}
	return &Evidence{
		Public: public, Name: append([]byte(nil), h.Name.Buffer...),
		AKPublic: tpm2.Marshal(ak.OutPublic), AKName: append([]byte(nil), ak.Name.Buffer...),
		CertifyInfo: append([]byte(nil), rsp.CertifyInfo.Bytes()...), Signature: tpm2.Marshal(rsp.Signature),
	}, nil
}

// publicBlob is the key's TPM2B_PUBLIC: the stored blob, or read from its
// persistent handle.
func (k *Key) publicBlob(h tpm2.NamedHandle) ([]byte, error) {
	if len(k.cfg.Public) > 0 {
		return append([]byte(nil), k.cfg.Public...), nil
	}
	rp, err := tpm2.ReadPublic{ObjectHandle: h.Handle}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("read key", err)
	}
	return tpm2.Marshal(rp.OutPublic), nil
}

// endorsementKeys derives the ECC EK, and the RSA EK when the TPM holds
// its certificate, and reads their certificates.
func (k *Key) endorsementKeys() (map[string]EK, error) {
	out := map[string]EK{}
	for _, name := range []string{EKECC, EKRSA} {
		t := ekTemplates[name]
		cert, err := readNV(k.conn, t.certNV)
		if err != nil {
			return nil, k.storeError("read EK certificate", err)
		}
		if cert == nil && name != EKECC {
			continue
		}
		public, err := k.ekPublic(t.template)
		if err != nil {
			return nil, err
		}
		out[name] = EK{Public: public, Certificate: cert}
	}
	return out, nil
}

func (k *Key) ekPublic(template tpm2.TPMTPublic) ([]byte, error) {
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(template)}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("create endorsement key", err)
	}
	flush(k.conn, ek.ObjectHandle)
	return tpm2.Marshal(ek.OutPublic), nil
}

// nvChunk is what one TPM2_NV_Read asks for: below every TPM's
// TPM_PT_NV_BUFFER_MAX.
const nvChunk = 512

// readNV reads a whole NV index with its own (empty) authorisation, as EK
// certificates are read; nil when the index is not defined.
func readNV(t transport.TPM, index uint32) ([]byte, error) {
	h := tpm2.TPMHandle(index)
	pub, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	contents, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, contents.DataSize)
	for off := uint16(0); off < contents.DataSize; {
		n := min(contents.DataSize-off, nvChunk)
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: h, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: h, Name: pub.NVName},
			Size:       n, Offset: off,
		}.Execute(t)
		if err != nil {
			return nil, err
		}
		out = append(out, rsp.Data.Buffer...)
		off += n
	}
	return out, nil
}

// ErrCredentialRefused is the TPM refusing to release a credential: made
// for another Name or EK, or damaged.
var ErrCredentialRefused = errors.New("tpm: the TPM did not release the credential")

// ActivateCredential releases a credential a verifier made for the
// attestation key with TPM2_MakeCredential against the endorsement key
// ek (EKECC or EKRSA). The TPM releases it only if an object with the Name
// the verifier used is loaded beside that EK: returning it proves the AK
// lives in the TPM the EK certificate names.
func (k *Key) ActivateCredential(ctx context.Context, ek string, idObject, encSecret []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, ok := ekTemplates[ek]
	if !ok {
		return nil, fmt.Errorf("%w: no EK template %q", ErrCredentialRefused, ek)
	}
	var secret []byte
	err := k.connected(func() error {
		var err error
		secret, err = k.activate(t.template, idObject, encSecret)
		return err
	})
	return secret, err
}

func (k *Key) activate(template tpm2.TPMTPublic, idObject, encSecret []byte) ([]byte, error) {
	ak, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(AKTemplate)}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("create attestation key", err)
	}
	defer flush(k.conn, ak.ObjectHandle)
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(template)}.Execute(k.conn)
	if err != nil {
		return nil, k.storeError("create endorsement key", err)
	}
	defer flush(k.conn, ek.ObjectHandle)
	// The EK's policy: PolicySecret(TPM_RH_ENDORSEMENT), with the
	// endorsement hierarchy's (empty) authorisation.
	policy := tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(t transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
			PolicySession: h,
		}.Execute(t)
		return err
	})
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: policy},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: idObject},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: encSecret},
	}.Execute(k.conn)
	var rc tpm2.TPMRC
	if errors.As(err, &rc) {
		return nil, fmt.Errorf("%w: %v", ErrCredentialRefused, rc)
	}
	if err != nil {
		return nil, k.storeError("activate credential", err)
	}
	return rsp.CertInfo.Buffer, nil
}

// PublicArea is the key's TPM2B_PUBLIC: the stored blob, without reaching
// the TPM, or, for a key kept at a persistent handle, read from the TPM.
func (k *Key) PublicArea(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(k.cfg.Public) > 0 {
		return append([]byte(nil), k.cfg.Public...), nil
	}
	var public []byte
	err := k.connected(func() error {
		var err error
		public, err = k.publicBlob(tpm2.NamedHandle{Handle: tpm2.TPMHandle(k.cfg.PersistentHandle)})
		return err
	})
	return public, err
}
