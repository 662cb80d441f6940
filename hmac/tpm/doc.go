// Package tpm keeps an AWS secret in a TPM 2.0 as a keyed-hash HMAC object
// that never leaves the TPM, reached through /dev/tpmrm0 or swtpm over TCP.
package tpm
