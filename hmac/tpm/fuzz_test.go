package tpm

import (
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// Whoever writes config chooses tpm_targets and tpm_blobs: their binary
// parts are parsed before anything else happens, and must fail cleanly.
func FuzzTargetAndBlob(f *testing.F) {
	f.Add(tpm2.Marshal(tpm2.New2B(tpm2.ECCEKTemplate)), tpm2.Marshal(tpm2.New2B(dupTemplate(nil))), []byte{0x30, 0x00})
	f.Add([]byte{0, 4, 0, 1, 0, 11}, []byte{0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, parentPublic, public, cert []byte) {
		target := &Target{Parent: ParentEKECC, ParentPublic: parentPublic, Name: "00", EKCertificate: cert}
		_ = VerifyTarget(target, nil, []string{"00"})
		_ = CheckBlob(target, &Blob{Parent: ParentEKECC, ParentName: "00", Public: public}, false)
		_, _ = PropertiesOf(public)
	})
}
