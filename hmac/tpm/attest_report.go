package tpm

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// AKCommand is how an operator derives the attestation key on the host
// with tpm2-tools, to compare its Name with ak_name.
const AKCommand = "tpm2_createprimary -C e -g sha256 -G ecc256:ecdsa-sha256:null -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'"

// Report is the evidence as a verifier reads it: blobs in base64, Names in
// hex, the key's attributes decoded, and the AK's key and signature also
// in the forms openssl reads (PEM, DER).
func (ev *Evidence) Report(nonce []byte) (map[string]any, error) {
	props, err := PropertiesOf(ev.Public)
	if err != nil {
		return nil, err
	}
	props.Duplicated = ev.Duplicated
	b64 := base64.StdEncoding.EncodeToString
	out := map[string]any{
		"public": b64(ev.Public), "name": hex.EncodeToString(ev.Name),
		"attributes": props.Map(), "auth_policy": hex.EncodeToString(props.AuthPolicy),
		"duplicable": len(props.Exposures()) > 0, "imported_by_duplication": ev.Duplicated, "nonce": hex.EncodeToString(nonce),
		"certify_info": b64(ev.CertifyInfo), "signature": b64(ev.Signature),
		"ak_public": b64(ev.AKPublic), "ak_name": hex.EncodeToString(ev.AKName), "ak_command": AKCommand,
	}
	if pemKey, der, err := ev.opensslForms(); err == nil {
		out["ak_public_pem"], out["signature_der"] = pemKey, b64(der)
	}
	eks := map[string]any{}
	for name, ek := range ev.EKs {
		m := map[string]any{"public": b64(ek.Public), "certificate": ""}
		if ek.Certificate != nil {
			m["certificate"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ek.Certificate}))
		}
		eks[name] = m
	}
	out["endorsement_keys"] = eks
	return out, nil
}

// Map is the attributes by their names in the TPM specification.
func (p Properties) Map() map[string]bool {
	return map[string]bool{
		"fixedTPM": p.FixedTPM, "fixedParent": p.FixedParent, "sensitiveDataOrigin": p.SensitiveDataOrigin,
		"userWithAuth": p.UserWithAuth, "adminWithPolicy": p.AdminWithPolicy, "noDA": p.NoDA,
		"encryptedDuplication": p.EncryptedDuplication, "restricted": p.Restricted,
		"decrypt": p.Decrypt, "sign": p.SignEncrypt,
	}
}

// opensslForms are the AK's public key as PEM and the signature as DER.
func (ev *Evidence) opensslForms() (string, []byte, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](ev.AKPublic)
	if err != nil {
		return "", nil, err
	}
	c, err := pub.Contents()
	if err != nil {
		return "", nil, err
	}
	key, err := tpm2.Pub(*c)
	if err != nil {
		return "", nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", nil, err
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](ev.Signature)
	if err != nil {
		return "", nil, err
	}
	e, err := sig.Signature.ECDSA()
	if err != nil {
		return "", nil, err
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)})
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})), der, err
}

// Statement says in plain words what the evidence shows and what it does
// not, for these properties; fresh is whether a nonce was given.
func Statement(p Properties, ev *Evidence, fresh bool) string {
	var s []string
	if p.Duplicated {
		s = append(s, duplicatedStatement)
	} else if e := p.Exposures(); len(e) > 0 {
		s = append(s, "The key CAN leave this TPM: "+strings.Join(e, "; ")+".")
	} else {
		s = append(s, "The key's public area sets fixedTPM and fixedParent: the TPM never exports the key's secret part in a form another TPM or anyone else can use, and refuses TPM2_Duplicate for it whatever its authPolicy.")
	}
	if len(p.AuthPolicy) == 0 {
		s = append(s, "Its authPolicy is empty, so no policy session (which duplication would need) can authorise anything for it.")
	} else {
		s = append(s, "Its authPolicy is set (the PCR policy it was sealed with); fixedParent alone rules out duplication.")
	}
	if !p.SensitiveDataOrigin {
		s = append(s, "sensitiveDataOrigin is clear: the key was imported, its value came from outside (the AWS secret existed before the import), so the TPM vouches that this copy cannot leave, not that no other copy exists.")
	}
	s = append(s, "Check it offline: the key's Name is 000b followed by SHA-256 of the public area after its two size bytes; certify_info must begin with TPM_GENERATED_VALUE (ff544347), be of type TPM_ST_ATTEST_CERTIFY (8017), carry your nonce as extraData and name that Name; signature must verify (ECDSA P-256, SHA-256) over certify_info with ak_public, whose Name must be ak_name. The AK is a restricted signing key: the TPM lets it sign only structures the TPM itself produced.")
	s = append(s, "What this answer cannot show: that ak_name belongs to a genuine TPM, or to the TPM of the endorsement keys listed (an EK cannot sign, so nothing here links them). Pin ak_name once: on the host, derive the AK with `"+AKCommand+"` and compare its Name; or remotely, check an EK certificate against its manufacturer's CA, make a credential for ak_name with that EK (TPM2_MakeCredential) and read config/attestation with credential_blob and credential_secret: the TPM releases it only beside that EK.")
	if !hasCertificate(ev) {
		s = append(s, "This TPM holds no EK certificate (swtpm without one is a software TPM): nothing ties it to a manufacturer.")
	}
	if !fresh {
		s = append(s, "No nonce was given: this evidence is not fresh and could be a replay; give nonce for one.")
	}
	return strings.Join(s, " ")
}

func hasCertificate(ev *Evidence) bool {
	for _, ek := range ev.EKs {
		if ek.Certificate != nil {
			return true
		}
	}
	return false
}

// Activation is a credential to activate with ActivateCredential.
type Activation struct {
	EK                  string // EKECC or EKRSA
	IDObject, EncSecret []byte
}

// Answer is the evidence, a statement of what it means, and what lets
// the key leave: what the plugin answers for a TPM key.
type Answer struct {
	Statement string
	Report    map[string]any
	Exposures []string
}

// Attest certifies the key over nonce and, with act, activates a
// credential for the AK (its result in Report as activated_credential).
func (k *Key) Attest(ctx context.Context, nonce []byte, act *Activation) (*Answer, error) {
	ev, err := k.Certify(ctx, nonce)
	if err != nil {
		return nil, err
	}
	props, err := PropertiesOf(ev.Public)
	if err != nil {
		return nil, err
	}
	props.Duplicated = ev.Duplicated
	report, err := ev.Report(nonce)
	if err != nil {
		return nil, err
	}
	if act != nil {
		secret, err := k.ActivateCredential(ctx, act.EK, act.IDObject, act.EncSecret)
		if err != nil {
			return nil, err
		}
		report["activated_credential"] = base64.StdEncoding.EncodeToString(secret)
	}
	return &Answer{Statement: Statement(props, ev, len(nonce) > 0), Report: report, Exposures: props.Exposures()}, nil
}

// Exposures is what the key's public area says lets it leave, without
// certifying anything.
func (k *Key) Exposures(ctx context.Context) ([]string, error) {
	public, err := k.PublicArea(ctx)
	if err != nil {
		return nil, err
	}
	props, err := PropertiesOf(public)
	if err != nil {
		return nil, err
	}
	props.Duplicated = k.duplicationChecked(public)
	return props.Exposures(), nil
}

// duplicatedStatement explains a key imported by duplication.
const duplicatedStatement = "The key was imported by duplication (tpm_mode=duplicate): fixedTPM and fixedParent are clear, as TPM2_Import requires of any imported key. " +
	"Its authPolicy (empty, or the PCR and password policy this TPM computed and compared before the import) holds no PolicyCommandCode(TPM2_Duplicate), without which the TPM refuses TPM2_Duplicate, and its parent is a fixedTPM primary key: this copy cannot be exported again. " +
	"Each enrolled node's TPM holds its own copy, wrapped to it alone; whoever holds the secret can wrap it again. A verifier holding only this answer sees clear attributes: checking the policy needs the enrolment."
