package tpm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func nonce(t *testing.T) []byte {
	t.Helper()
	n := make([]byte, 32)
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	return n
}

func certify(t *testing.T, k *tpm.Key, n []byte) *tpm.Evidence {
	t.Helper()
	ev, err := k.Certify(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// The verifier knows only the public parts: the evidence, its nonce, and
// the AK Name it pinned at enrolment.
func verify(t *testing.T, ev *tpm.Evidence, n, pinnedAK []byte) *tpm.Certified {
	t.Helper()
	c, err := tpm.VerifyCertification(ev, n)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.AKName, pinnedAK) {
		t.Fatalf("signed by AK %x, pinned %x", c.AKName, pinnedAK)
	}
	return c
}

// enrolAK derives the AK on the TPM with tpm2-tools, from the template as
// the documentation gives it, as an operator enrolling the host would; it
// returns the AK's Name to pin.
func enrolAK(t *testing.T, addr string) []byte {
	t.Helper()
	if _, err := exec.LookPath("tpm2_createprimary"); err != nil {
		if testenv.InCI() {
			t.Fatal("tpm2_createprimary (Debian package tpm2-tools) missing")
		}
		t.Skip("tpm2-tools missing: run `make deps`")
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"tpm2_createprimary", "-C", "e", "-g", "sha256", "-G", "ecc256:ecdsa-sha256:null", "-a",
			"fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign", "-c", "ak.ctx"},
		{"tpm2_readpublic", "-c", "ak.ctx", "-n", "ak.name"},
		{"tpm2_flushcontext", "-t"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port="+strings.Split(addr, ":")[1])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, out)
		}
	}
	name, err := os.ReadFile(filepath.Join(dir, "ak.name"))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// TPM2_Certify of an imported key over a fresh nonce, verified from the
// public parts against an AK enrolled with tpm2-tools; the attributes the
// signed Name binds say the key cannot be duplicated. Nothing is left
// loaded.
func TestCertifyVerifies(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	pinned := enrolAK(t, sw.Addr)
	k := importKey(t, cfg)
	n := nonce(t)
	ev := certify(t, k, n)
	c := verify(t, ev, n, pinned)
	if !c.FixedTPM || !c.FixedParent || c.SensitiveDataOrigin || len(c.AuthPolicy) != 0 || !c.UserWithAuth || len(c.Exposures()) != 0 {
		t.Fatalf("properties %+v", c.Properties)
	}
	if !bytes.Equal(ev.Public, k.Reference().Public) || !bytes.Equal(c.Name, ev.Name) {
		t.Fatal("the certified key is not the configured one")
	}
	ecc, ok := ev.EKs[tpm.EKECC]
	if !ok || len(ecc.Public) == 0 || ecc.Certificate != nil || len(ev.EKs) != 1 {
		t.Fatalf("EKs on a TPM without EK certificates: %+v", ev.EKs)
	}
	keytest.NoSecretIn(t, "the evidence", bytes.Join([][]byte{ev.Public, ev.Name, ev.AKPublic, ev.CertifyInfo, ev.Signature}, nil))
	keytest.CheckSuite(t, k)
	k.Close()
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

// Each part of the evidence is checked: changing any of them, or asking
// about another nonce, fails verification.
func TestCertifyTampered(t *testing.T) {
	_, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	n := nonce(t)
	other := importKey(t, tpm.Config{Device: cfg.Device, Password: "other"})
	otherEv := certify(t, other, n)
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return c
	}
	cases := map[string]func(ev *tpm.Evidence) []byte{
		"another nonce":        func(ev *tpm.Evidence) []byte { return nonce(t) },
		"no nonce":             func(ev *tpm.Evidence) []byte { return nil },
		"signature changed":    func(ev *tpm.Evidence) []byte { ev.Signature = flip(ev.Signature, len(ev.Signature)-1); return n },
		"certify info changed": func(ev *tpm.Evidence) []byte { ev.CertifyInfo = flip(ev.CertifyInfo, len(ev.CertifyInfo)-1); return n },
		"another key's public": func(ev *tpm.Evidence) []byte { ev.Public = otherEv.Public; return n },
		"attributes changed":   func(ev *tpm.Evidence) []byte { ev.Public = flip(ev.Public, 9); return n }, // objectAttributes' low byte
		"AK name changed":      func(ev *tpm.Evidence) []byte { ev.AKName = flip(ev.AKName, 5); return n },
		"another certification": func(ev *tpm.Evidence) []byte {
			ev.CertifyInfo, ev.Signature = otherEv.CertifyInfo, otherEv.Signature
			return n
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			ev := certify(t, k, n)
			if _, err := tpm.VerifyCertification(ev, n); err != nil {
				t.Fatalf("untampered: %v", err)
			}
			if c, err := tpm.VerifyCertification(ev, tamper(ev)); err == nil {
				t.Fatalf("tampered evidence verified: %+v", c)
			}
		})
	}
}

// A keyed-hash object created without fixedTPM and fixedParent certifies
// and verifies like any other: the signed public area says it can leave.
func TestCertifyDuplicableKey(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	conn, err := tpm.Dial(cfg.Device)
	if err != nil {
		t.Fatal(err)
	}
	srk, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(conn)
	if err != nil {
		t.Fatal(err)
	}
	created, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: []byte(cfg.Password)},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: []byte("AWS4" + keytest.Secret)}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{Type: tpm2.TPMAlgKeyedHash, NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{UserWithAuth: true, SignEncrypt: true},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{
				Scheme: tpm2.TPMAlgHMAC, Details: tpm2.NewTPMUSchemeKeyedHash(tpm2.TPMAlgHMAC, &tpm2.TPMSSchemeHMAC{HashAlg: tpm2.TPMAlgSHA256})}})}),
	}.Execute(conn)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tpm2.FlushContext{FlushHandle: srk.ObjectHandle}.Execute(conn)
	conn.Close()
	cfg.Public, cfg.Private = tpm2.Marshal(created.OutPublic), tpm2.Marshal(created.OutPrivate)
	k, err := tpm.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	n := nonce(t)
	c := verify(t, certify(t, k, n), n, enrolAK(t, sw.Addr))
	if e := c.Exposures(); c.FixedTPM || c.FixedParent || len(e) != 2 {
		t.Fatalf("a duplicable key: %+v %v", c.Properties, e)
	}
}

// A PCR-sealed key certifies with its password (ADMIN role), and its
// signed public area shows the policy and that the password alone cannot
// use it.
func TestCertifyPCRSealedAndPersistent(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	pinned := enrolAK(t, sw.Addr)
	sealed := cfg
	sealed.PCRs = []uint{16}
	persistent := cfg
	persistent.PersistentHandle = 0x81000102
	for name, c := range map[string]tpm.Config{"sealed": sealed, "persistent": persistent} {
		k := importKey(t, c)
		if name == "persistent" {
			// Opened by its handle alone: the public area comes from the TPM.
			opened, err := tpm.Open(context.Background(), tpm.Config{Device: c.Device, PersistentHandle: c.PersistentHandle, Password: c.Password}, keytest.AccessKeyID)
			if err != nil {
				t.Fatal(err)
			}
			k.Close()
			k = opened
		}
		n := nonce(t)
		ev := certify(t, k, n)
		got := verify(t, ev, n, pinned)
		if public, err := k.PublicArea(context.Background()); err != nil || !bytes.Equal(public, ev.Public) {
			t.Fatalf("%s: PublicArea %x, %v", name, public, err)
		}
		if !got.FixedTPM || !got.FixedParent {
			t.Fatalf("%s: %+v", name, got.Properties)
		}
		if name == "sealed" && (got.UserWithAuth || len(got.AuthPolicy) != 32) {
			t.Fatalf("sealed key: %+v", got.Properties)
		}
		k.Close()
	}
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

// Credential activation: a verifier who holds only the EK's public area
// makes a credential for the AK's Name; the TPM releases it, and refuses
// a credential made for another Name.
func TestActivateCredential(t *testing.T) {
	sw, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	ev := certify(t, k, nil)
	secret := nonce(t)
	id, enc := testenv.MakeCredential(t, ev.EKs[tpm.EKECC].Public, ev.AKName, secret)
	got, err := k.ActivateCredential(context.Background(), tpm.EKECC, id, enc)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("activated %x, %v", got, err)
	}
	id, enc = testenv.MakeCredential(t, ev.EKs[tpm.EKECC].Public, ev.Name, secret) // the HMAC key's Name, not the AK's
	if _, err := k.ActivateCredential(context.Background(), tpm.EKECC, id, enc); !errors.Is(err, tpm.ErrCredentialRefused) {
		t.Fatalf("a credential for another Name: %v", err)
	}
	k.Close()
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}

// On a TPM manufactured with an EK certificate (swtpm_setup and its local
// CA), the RSA EK's certificate is returned and certifies the EK public
// area returned beside it; a credential made with the certificate's key
// activates.
func TestEKCertificate(t *testing.T) {
	addr := startManufacturedSWTPM(t)
	k := importKey(t, tpm.Config{Device: "tcp://" + addr, Password: "pw"})
	ev := certify(t, k, nonce(t))
	rsaEK, ok := ev.EKs[tpm.EKRSA]
	if !ok || rsaEK.Certificate == nil {
		t.Fatalf("no RSA EK certificate: %+v", ev.EKs)
	}
	cert, err := x509.ParseCertificate(trimDER(rsaEK.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := tpm2.Unmarshal[tpm2.TPM2BPublic](rsaEK.Public)
	contents, _ := pub.Contents()
	unique, err := contents.Unique.RSA()
	if err != nil {
		t.Fatal(err)
	}
	certKey, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !bytes.Equal(certKey.N.Bytes(), unique.Buffer) {
		t.Fatal("the EK certificate is not for the RSA EK returned")
	}
	secret := nonce(t)
	id, enc := testenv.MakeCredential(t, rsaEK.Public, ev.AKName, secret)
	if got, err := k.ActivateCredential(context.Background(), tpm.EKRSA, id, enc); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("activation with the certified RSA EK: %x %v", got, err)
	}
}

// trimDER drops the padding some TPMs store after the certificate.
func trimDER(b []byte) []byte {
	if len(b) > 4 && b[0] == 0x30 && b[1] == 0x82 {
		if n := int(b[2])<<8 | int(b[3]); n+4 <= len(b) {
			return b[:n+4]
		}
	}
	return b
}

// startManufacturedSWTPM prepares a TPM state with EK certificates signed
// by a local CA (swtpm_setup, swtpm_localca) and serves it.
func startManufacturedSWTPM(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("swtpm_setup"); err != nil {
		if testenv.InCI() {
			t.Fatal("swtpm_setup (Debian package swtpm-tools) missing")
		}
		t.Skip("swtpm-tools missing: run `make deps`")
	}
	dir := testenv.TempDir(t, "swtpm-ek-")
	for _, d := range []string{"ca", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"localca.conf":    "statedir = " + dir + "/ca\nsigningkey = " + dir + "/ca/signkey.pem\nissuercert = " + dir + "/ca/issuercert.pem\ncertserial = " + dir + "/ca/certserial\n",
		"localca.options": "",
		"setup.conf":      "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = " + dir + "/localca.conf\ncreate_certs_tool_options = " + dir + "/localca.options\nactive_pcr_banks = sha256\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", dir+"/state", "--create-ek-cert", "--config", dir+"/setup.conf", "--overwrite").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	port := testenv.FreePort(t)
	bin, _ := exec.LookPath("swtpm")
	p := testenv.StartProcess(t, "swtpm", filepath.Join(dir, "swtpm.log"), nil, bin, "socket", "--tpm2",
		"--tpmstate", "dir="+dir+"/state", "--server", "type=tcp,port="+strconv.Itoa(port)+",bindaddr=127.0.0.1",
		"--flags", "not-need-init,startup-clear")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitFor(t, "swtpm", 30*time.Second, p, func() error {
		c, err := tpm.OpenTCP(addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

// The go-tpm simulator certifies too.
func TestCertifySimulator(t *testing.T) {
	open := func() (transport.TPMCloser, error) {
		sim, err := simulator.GetWithFixedSeedInsecure(1234)
		if err != nil {
			return nil, err
		}
		return transport.FromReadWriteCloser(sim), nil
	}
	k := importKey(t, tpm.Config{Open: open})
	n := nonce(t)
	ev := certify(t, k, n)
	c, err := tpm.VerifyCertification(ev, n)
	if err != nil || !c.FixedTPM || !c.FixedParent {
		t.Fatalf("%+v %v", c, err)
	}
}

// The report's openssl forms verify with openssl itself: the AK's PEM key
// and the DER signature over certify_info.
func TestReportVerifiesWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl missing")
	}
	_, cfg := swtpmConfig(t)
	k := importKey(t, cfg)
	n := nonce(t)
	report, err := certify(t, k, n).Report(n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	info, _ := base64.StdEncoding.DecodeString(report["certify_info"].(string))
	sig, _ := base64.StdEncoding.DecodeString(report["signature_der"].(string))
	for name, content := range map[string][]byte{"ak.pem": []byte(report["ak_public_pem"].(string)), "sig.der": sig, "info.bin": info} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	verify := func() (string, error) {
		cmd := exec.Command(openssl, "dgst", "-sha256", "-verify", "ak.pem", "-signature", "sig.der", "info.bin")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl: %v %s", err, out)
	}
	info[len(info)-1] ^= 1
	_ = os.WriteFile(filepath.Join(dir, "info.bin"), info, 0o600)
	if out, err := verify(); err == nil {
		t.Fatalf("openssl verified a changed certify_info: %s", out)
	}
	if attrs := report["attributes"].(map[string]bool); !attrs["fixedTPM"] || !attrs["fixedParent"] || report["duplicable"] != false {
		t.Fatalf("report %v", report)
	}
}
