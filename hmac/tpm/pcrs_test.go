package tpm

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

func TestCheckPCRs(t *testing.T) {
	all := make([]uint, 24)
	for i := range all {
		all[i] = uint(23 - i)
	}
	for _, ok := range [][]uint{nil, {7}, {16, 0, 7}, all} {
		if err := CheckPCRs(ok); err != nil {
			t.Fatalf("%v: %v", ok, err)
		}
	}
	for _, bad := range [][]uint{{24}, {math.MaxUint64}, {1 << 62}, {1 << 36}, {7, 7}, {0, 7, 0}, append(slices.Clone(all), 0)} {
		if err := CheckPCRs(bad); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

// PCR numbers are not covered by the EK certificate: whoever lists a
// target chooses them. A huge one made go-tpm allocate a bitmap of that
// size (2^64-1 panicked in makeslice); each entry point refuses it instead.
func TestHostilePCRsRefused(t *testing.T) {
	node, _ := simTPM(t, 801)
	good := enroll(t, node, ParentEKRSA, 7)
	blob := wrap(t, good, "")
	for _, pcrs := range [][]uint{{math.MaxUint64}, {1 << 62}, {1 << 36}, {7, 7}, {24}} {
		target := *good
		target.PCRs = pcrs
		b := blob
		b.PCRs = pcrs
		if err := VerifyTarget(&target, nil, []string{target.Name}); !errors.Is(err, ErrBadTarget) {
			t.Fatalf("VerifyTarget %v: %v", pcrs, err)
		}
		if _, err := Wrap(&target, keytest.Secret, ""); !errors.Is(err, ErrBadTarget) {
			t.Fatalf("Wrap %v: %v", pcrs, err)
		}
		if err := CheckBlob(&target, &b, false); err == nil {
			t.Fatalf("CheckBlob %v accepted", pcrs)
		}
		if _, err := policyFor(pcrs, target.PCRDigest, false); !errors.Is(err, ErrBadTarget) {
			t.Fatalf("policyFor %v: %v", pcrs, err)
		}
		if _, err := openBlobs(node, "", b); !errors.Is(err, ErrBlobRefused) {
			t.Fatalf("import of a blob with PCRs %v: %v", pcrs, err)
		}
		if _, err := Enroll(context.Background(), node, ParentEKRSA, pcrs); err == nil {
			t.Fatalf("Enroll %v accepted", pcrs)
		}
	}
}

// An enrolment lists its PCRs in order, each once: PCRs given out of order
// give the same target, and a blob wrapped to it loads.
func TestEnrollPCROrder(t *testing.T) {
	node, _ := simTPM(t, 802)
	target := enroll(t, node, ParentEKECC, 16, 0)
	if !slices.Equal(target.PCRs, []uint{0, 16}) {
		t.Fatalf("pcrs %v", target.PCRs)
	}
	k, err := openBlobs(node, "", wrap(t, target, ""))
	if err != nil {
		t.Fatal(err)
	}
	keytest.CheckSuite(t, k)
	k.Close()
}
