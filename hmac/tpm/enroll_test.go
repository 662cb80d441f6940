package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// testCA is a root that signs EK certificates for the simulator's keys.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test EK CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// sign certifies pub with the given EKU OIDs and extra extensions.
func (ca *testCA) sign(t *testing.T, pub crypto.PublicKey, eku []asn1.ObjectIdentifier, ext ...pkix.Extension) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		UnknownExtKeyUsage: eku, ExtraExtensions: ext, KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func publicKeyOf(t *testing.T, target *Target) crypto.PublicKey {
	t.Helper()
	pub, err := target.parentPublic()
	if err != nil {
		t.Fatal(err)
	}
	detail, _ := pub.Parameters.ECCDetail()
	unique, _ := pub.Unique.ECC()
	k, err := tpm2.ECDSAPub(detail, unique)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// VerifyTarget takes an EK certificate from the CA for the parent's own
// key, and refuses every near miss.
func TestVerifyTarget(t *testing.T) {
	node, _ := simTPM(t, 701)
	ca, other := newTestCA(t), newTestCA(t)
	target := enroll(t, node, ParentEKECC)
	ekKey := publicKeyOf(t, target)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverAuth := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	critical := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}
	with := func(cert []byte) *Target { c := *target; c.EKCertificate = cert; return &c }

	if err := VerifyTarget(with(ca.sign(t, ekKey, []asn1.ObjectIdentifier{oidEKCertificate})), ca.pool, nil); err != nil {
		t.Fatalf("a genuine EK certificate: %v", err)
	}
	for name, tg := range map[string]*Target{
		"another CA":              with(other.sign(t, ekKey, []asn1.ObjectIdentifier{oidEKCertificate})),
		"another key":             with(ca.sign(t, otherKey.Public(), []asn1.ObjectIdentifier{oidEKCertificate})),
		"a TLS certificate":       with(ca.sign(t, ekKey, []asn1.ObjectIdentifier{serverAuth})),
		"an unknown critical ext": with(ca.sign(t, ekKey, []asn1.ObjectIdentifier{oidEKCertificate}, critical)),
		"no certificate":          with(nil),
		"garbage":                 with([]byte{0x30, 0x03, 1, 2, 3}),
	} {
		if err := VerifyTarget(tg, ca.pool, nil); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	if err := VerifyTarget(with(nil), ca.pool, []string{strings.ToUpper(target.Name)}); err != nil {
		t.Fatalf("no certificate, its Name pinned: %v", err)
	}
	srkPinned := enroll(t, node, ParentSRK)
	if err := VerifyTarget(with(nil), ca.pool, []string{srkPinned.Name}); !errors.Is(err, ErrUncertified) {
		t.Fatalf("no certificate, another Name pinned: %v", err)
	}
	srk := enroll(t, node, ParentSRK)
	srk.EKCertificate = ca.sign(t, ekKey, []asn1.ObjectIdentifier{oidEKCertificate})
	if err := VerifyTarget(srk, ca.pool, nil); !errors.Is(err, ErrUncertified) {
		t.Fatalf("an SRK with an EK's certificate: %v", err)
	}
}
