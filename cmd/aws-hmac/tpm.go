package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
)

const tpmUsage = `Usage: aws-hmac tpm <enroll|wrap|check> [flags]

  enroll  on each Vault node: print what a wrapper needs about this TPM (JSON)
  wrap    on an offline machine: wrap an AWS secret, read from the terminal,
          to each enrolled TPM; writes the blobs for config's tpm_blobs
  check   on a node (a standby too): whether this TPM finds, imports and loads
          its blob among tpm_blobs

It never talks to Vault. aws-hmac tpm <subcommand> -help for its flags.

Example:
  aws-hmac tpm enroll -device /dev/tpmrm0 -parent ek-rsa-2048 > node1.json
`

// runTPM dispatches the duplication subcommands.
func runTPM(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tpmUsage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, tpmUsage)
		return 0
	case "enroll":
		return runTPMEnroll(args[1:], stdout, stderr)
	case "wrap":
		return runTPMWrap(args[1:], stdout, stderr, stdinTerminal)
	case "check":
		return runTPMCheck(args[1:], stdout, stderr, stdinTerminal)
	}
	fmt.Fprint(stderr, tpmUsage)
	return 2
}

const enrollHelp = `Usage: aws-hmac tpm enroll [-device /dev/tpmrm0] [-parent ek-rsa-2048] [-pcrs 7] [-chain ca.pem]

Prints this TPM's duplication target as JSON: the parent key a wrapped
secret is imported under, its Name (parent_name), and its EK certificate
(and the intermediates given with -chain). Nothing in it is secret. A
parent without an EK certificate (srk-ecc-p256, or a TPM that holds none)
is accepted as a target only when the plugin's registration lists its
parent_name in AWS_HMAC_TPM_ALLOW_SRK. -pcrs (each PCR 0-23, once) are not
covered by the certificate: whoever writes config's tpm_targets chooses them.

Example:
  aws-hmac tpm enroll -device /dev/tpmrm0 -parent ek-rsa-2048 -pcrs 7 > node1.json
`

func runTPMEnroll(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tpm enroll", flag.ContinueOnError)
	device := fs.String("device", "/dev/tpmrm0", "TPM device, or tcp://HOST:PORT for swtpm")
	parent := fs.String("parent", tpm.ParentEKRSA, "parent kind: "+strings.Join(tpm.ParentKinds(), ", "))
	pcrs := fs.String("pcrs", "", "comma-separated SHA-256 PCRs to seal this node's copy to, at their current values")
	chain := fs.String("chain", "", "PEM file of intermediate CA certificates of the EK certificate")
	fs.Usage = func() { _, _ = io.WriteString(stderr, enrollHelp); fs.PrintDefaults() }
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	sel, err := parsePCRList(*pcrs)
	if err != nil {
		return fail(stderr, err)
	}
	t, err := tpm.Enroll(context.Background(), tpm.Config{Device: *device}, *parent, sel)
	if err != nil {
		return fail(stderr, err)
	}
	if *chain != "" {
		if t.EKChain, err = readPEMCerts(*chain); err != nil {
			return fail(stderr, err)
		}
	}
	return writeJSON(stdout, stderr, t)
}

// parsePCRList reads -pcrs: each PCR 0-23 once, returned in order (a PCR
// listed twice would be hashed twice into the digest, and no blob sealed
// to it would load).
func parsePCRList(s string) ([]uint, error) {
	var out []uint
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > tpm.MaxPCR {
			return nil, errors.New("-pcrs: PCR numbers from 0 to 23")
		}
		out = append(out, uint(n))
	}
	if err := tpm.CheckPCRs(out); err != nil {
		return nil, fmt.Errorf("-pcrs: %w", err)
	}
	return slices.Sorted(slices.Values(out)), nil
}

func readPEMCerts(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			out = append(out, block.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

func writeJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail(stderr, err)
	}
	return 0
}

const wrapHelp = `Usage: aws-hmac tpm wrap -access-key AKIA... -ca ek-ca.pem -target n1.json -target n2.json ... -out blobs.json

Reads the AWS secret access key from the terminal (never from an argument
or the environment), checks each target's EK certificate against the CA
bundle, and writes one blob per target, as a JSON array for config's
tpm_blobs. Pure software: no TPM and no network are used. A target without
an EK certificate (an SRK) is wrapped to only when -allow-srk lists its
parent_name, as the plugin's AWS_HMAC_TPM_ALLOW_SRK must.

Example:
  aws-hmac tpm wrap -access-key AKIAIOSFODNN7EXAMPLE -ca ek-ca.pem -target node1.json -target node2.json -out blobs.json
`

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// accessKeyRe: AWS's IDs (AKIA...) and those of services that speak its
// protocol; the ID only labels the prompt, the blobs do not carry it.
var accessKeyRe = regexp.MustCompile(`^[A-Za-z0-9._-]{3,128}$`)

type wrapFlags struct {
	accessKey, ca, out string
	allowSRK           string
	password           bool
	targets            stringList
}

func runTPMWrap(args []string, stdout, stderr io.Writer, readSecret func(prompt string, stderr io.Writer) (string, error)) int {
	var f wrapFlags
	fs := flag.NewFlagSet("tpm wrap", flag.ContinueOnError)
	fs.StringVar(&f.accessKey, "access-key", "", "the AWS access key ID the secret belongs to")
	fs.StringVar(&f.ca, "ca", "", "PEM bundle of the EK CAs the targets' certificates must chain to")
	fs.StringVar(&f.out, "out", "", "file to write the blobs to (JSON array); it must not exist")
	fs.StringVar(&f.allowSRK, "allow-srk", "", "comma-separated parent Names (hex) of the targets without an EK certificate to wrap to (the plugin's AWS_HMAC_TPM_ALLOW_SRK must list them too)")
	fs.BoolVar(&f.password, "password", false, "also read the key's password (config's tpm_password) from the terminal")
	fs.Var(&f.targets, "target", "an enrolment from aws-hmac tpm enroll (repeat per node)")
	fs.Usage = func() { _, _ = io.WriteString(stderr, wrapHelp); fs.PrintDefaults() }
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	targets, err := f.check()
	if err != nil {
		return fail(stderr, err)
	}
	secret, err := readSecret("AWS secret access key for "+f.accessKey+": ", stderr)
	if err != nil {
		return fail(stderr, err)
	}
	var password string
	if f.password {
		if password, err = readSecret("Key password: ", stderr); err != nil {
			return fail(stderr, err)
		}
	}
	blobs := make([]tpm.Blob, 0, len(targets))
	for i := range targets {
		b, err := tpm.Wrap(&targets[i], secret, password)
		if err != nil {
			return fail(stderr, fmt.Errorf("-target %s: %w", f.targets[i], err))
		}
		blobs = append(blobs, *b)
	}
	return writeBlobs(f.out, blobs, stdout, stderr)
}

// check reads and verifies the targets before the secret is asked for.
func (f *wrapFlags) check() ([]tpm.Target, error) {
	switch {
	case !accessKeyRe.MatchString(f.accessKey):
		return nil, errors.New("-access-key: the access key ID (AKIA...) is required")
	case len(f.targets) == 0:
		return nil, errors.New("-target: at least one enrolment is required")
	case f.out == "":
		return nil, errors.New("-out: the file to write the blobs to is required")
	}
	var roots *x509.CertPool
	if f.ca != "" {
		certs, err := readPEMCerts(f.ca)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		roots = x509.NewCertPool()
		for _, der := range certs {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("-ca: %w", err)
			}
			roots.AddCert(c)
		}
	}
	var pinned []string
	for _, n := range strings.Split(f.allowSRK, ",") {
		if n = strings.TrimSpace(n); n != "" {
			pinned = append(pinned, n)
		}
	}
	targets := make([]tpm.Target, len(f.targets))
	for i, path := range f.targets {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &targets[i]); err != nil {
			return nil, fmt.Errorf("-target %s: %w", path, err)
		}
		if err := tpm.VerifyTarget(&targets[i], roots, pinned); err != nil {
			return nil, fmt.Errorf("-target %s: %w", path, err)
		}
	}
	return targets, nil
}

func writeBlobs(path string, blobs []tpm.Blob, stdout, stderr io.Writer) int {
	data, err := json.MarshalIndent(blobs, "", "  ")
	if err != nil {
		return fail(stderr, err)
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fail(stderr, err)
	}
	if _, err := file.Write(append(data, '\n')); err != nil {
		file.Close()
		return fail(stderr, err)
	}
	if err := file.Close(); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "wrote %d blobs to %s: vault write <mount>/config key_store=tpm tpm_mode=duplicate tpm_targets=@targets.json tpm_blobs=@%s ...\n", len(blobs), path, path)
	return 0
}

const checkHelp = `Usage: aws-hmac tpm check [-device /dev/tpmrm0] -blobs blobs.json [-password]

Imports and loads, in this node's TPM, the blob wrapped to it among the
blobs (config's tpm_blobs, as a JSON array), as the plugin does, and prints
this TPM's parent Names, the index of its blob (-1: not enrolled) and
whether it loads. Exits 1 when it does not. It computes no HMAC.

Example:
  vault read -field=tpm_blobs aws-hmac/config > blobs.json
  aws-hmac tpm check -device /dev/tpmrm0 -blobs blobs.json
`

func runTPMCheck(args []string, stdout, stderr io.Writer, readSecret func(string, io.Writer) (string, error)) int {
	fs := flag.NewFlagSet("tpm check", flag.ContinueOnError)
	device := fs.String("device", "/dev/tpmrm0", "TPM device, or tcp://HOST:PORT for swtpm")
	blobsPath := fs.String("blobs", "", "JSON array of blobs (config's tpm_blobs)")
	password := fs.Bool("password", false, "read the key's password (config's tpm_password) from the terminal")
	fs.Usage = func() { _, _ = io.WriteString(stderr, checkHelp); fs.PrintDefaults() }
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	data, err := os.ReadFile(*blobsPath)
	if err != nil {
		return fail(stderr, fmt.Errorf("-blobs: %w", err))
	}
	cfg := tpm.Config{Device: *device}
	if err := json.Unmarshal(data, &cfg.Blobs); err != nil || len(cfg.Blobs) == 0 {
		return fail(stderr, errors.New("-blobs: a JSON array of blobs is required"))
	}
	if *password {
		if cfg.Password, err = readSecret("Key password: ", stderr); err != nil {
			return fail(stderr, err)
		}
	}
	st := tpm.Probe(context.Background(), cfg, "check")
	out := map[string]any{"parent_names": st.Names, "blob": st.Blob, "blob_loads": st.Problem == nil}
	if st.Problem != nil {
		out["problem"] = st.Problem.Error()
	}
	if code := writeJSON(stdout, stderr, out); code != 0 || st.Problem == nil {
		return code
	}
	return 1
}
