package tpm

import (
	"errors"
	"fmt"
)

// MaxPCR is the highest PCR of a PC Client TPM.
const MaxPCR = 23

// CheckPCRs refuses a PCR list this package would not make: a number above
// 23 (go-tpm sizes its selection bitmap by the highest number, so a huge
// one allocates without bound or panics), a PCR listed twice (the enrolled
// digest would hash it twice while the TPM selects it once, so no blob
// sealed to it would ever load), more than 24. Order is free: the digest
// is taken in PCR order.
func CheckPCRs(pcrs []uint) error {
	if len(pcrs) > MaxPCR+1 {
		return fmt.Errorf("at most %d PCRs", MaxPCR+1)
	}
	var seen uint32
	for _, p := range pcrs {
		if p > MaxPCR {
			return fmt.Errorf("PCR numbers are 0 to %d", MaxPCR)
		}
		if seen&(1<<p) != 0 {
			return fmt.Errorf("PCR %d is listed twice", p)
		}
		seen |= 1 << p
	}
	return nil
}

// errParsePanic: go-tpm panicked on a structure a caller supplied.
var errParsePanic = errors.New("a TPM structure go-tpm cannot handle")

// recoverInto turns a panic in go-tpm, parsing or marshalling a structure
// from a caller, into an error wrapping kind: a hostile target or blob
// must not take the process down.
func recoverInto(err *error, kind error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %w", kind, errParsePanic)
	}
}
