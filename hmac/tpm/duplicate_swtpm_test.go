package tpm_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

func pcr16(t *testing.T, addr string, reset bool) {
	t.Helper()
	conn, err := tpm.Dial("tcp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pcr := tpm2.AuthHandle{Handle: tpm2.TPMHandle(16), Auth: tpm2.PasswordAuth(nil)}
	if reset {
		_, err = tpm2.PCRReset{PCRHandle: pcr}.Execute(conn)
	} else {
		_, err = tpm2.PCRExtend{PCRHandle: pcr, Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}}}}.Execute(conn)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// On swtpm, a copy sealed at enrolment to PCR 16 and a password works
// while the PCR holds its enrolled value, fails once it changes, works
// again when it is reset; a wrong password is hmac.ErrAuth. Nothing is
// left loaded in the TPM.
func TestDuplicatePCRSealedSWTPM(t *testing.T) {
	sw := testenv.StartSWTPM(t)
	cfg := tpm.Config{Device: "tcp://" + sw.Addr}
	target, err := tpm.Enroll(context.Background(), cfg, tpm.ParentEKECC, []uint{16})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := tpm.Wrap(target, keytest.Secret, "node-password")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Blobs, cfg.Password = []tpm.Blob{*blob}, "node-password"
	k, err := tpm.Open(context.Background(), cfg, keytest.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	keytest.CheckSuite(t, k)
	pcr16(t, sw.Addr, false)
	if _, err := k.HMAC(context.Background(), []byte(keytest.Date)); err == nil || !strings.Contains(err.Error(), "POLICY") {
		t.Fatalf("HMAC after the PCR changed: %v", err)
	}
	pcr16(t, sw.Addr, true)
	keytest.CheckSuite(t, k)

	wrong := cfg
	wrong.Password = "not-the-password"
	w, err := tpm.Open(context.Background(), wrong, keytest.AccessKeyID)
	if err == nil {
		_, err = w.HMAC(context.Background(), []byte(keytest.Date))
		w.Close()
	}
	if !errors.Is(err, hmac.ErrAuth) {
		t.Fatalf("a wrong password: %v, want hmac.ErrAuth", err)
	}
	if n := loadedHandles(t, sw.Addr); n != 0 {
		t.Fatalf("%d handles left in the TPM", n)
	}
}
