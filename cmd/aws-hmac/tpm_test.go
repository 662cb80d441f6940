package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// typed is a terminal reader fed by the pty: the real reader, with lines
// typed in advance.
func typed(t *testing.T, lines ...string) func(string, io.Writer) (string, error) {
	master, slave := testenv.PTY(t)
	return func(prompt string, stderr io.Writer) (string, error) {
		if _, err := master.WriteString(lines[0] + "\n"); err != nil {
			return "", err
		}
		lines = lines[1:]
		return readTerminal(slave, prompt, stderr)
	}
}

func enrollFile(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := runTPM(append([]string{"enroll"}, args...), &out, &errb); code != 0 {
		t.Fatalf("enroll %v: %d %s", args, code, errb.String())
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two swtpm TPMs with EK certificates from a local CA: enrolled, wrapped
// offline from a terminal, each imports its own blob and HMACs as the
// software key does; the other's blob is not its.
func TestTPMEnrollWrapImport(t *testing.T) {
	ca := testenv.NewEKCA(t)
	nodes := []*testenv.SWTPM{testenv.StartSWTPMWithEK(t, ca), testenv.StartSWTPMWithEK(t, ca)}
	dir := t.TempDir()
	w := checker{stranger: testenv.StartSWTPMWithEK(t, ca)}
	for _, kind := range []string{tpm.ParentEKRSA, tpm.ParentEKECC384} {
		var targets []string
		for i, n := range nodes {
			targets = append(targets, enrollFile(t, dir, kind+strconv.Itoa(i)+".json", "-device", "tcp://"+n.Addr, "-parent", kind, "-chain", ca.Intermediate))
		}
		out := filepath.Join(dir, kind+"-blobs.json")
		var stdout, stderr bytes.Buffer
		args := []string{"-access-key", "AKIAIOSFODNN7EXAMPLE", "-ca", ca.Root, "-target", targets[0], "-target", targets[1], "-out", out}
		if code := runTPMWrap(args, &stdout, &stderr, typed(t, keytest.Secret)); code != 0 {
			t.Fatalf("%s wrap: %s", kind, stderr.String())
		}
		data, _ := os.ReadFile(out)
		keytest.NoSecretIn(t, "the blobs file", data)
		keytest.NoSecretIn(t, "wrap's output", append(stdout.Bytes(), stderr.Bytes()...))
		var blobs []tpm.Blob
		if err := json.Unmarshal(data, &blobs); err != nil || len(blobs) != 2 {
			t.Fatalf("%s: %d blobs, %v", kind, len(blobs), err)
		}
		w.checkNodes(t, nodes, out)
		for i, n := range nodes {
			k, err := tpm.Open(context.Background(), tpm.Config{Device: "tcp://" + n.Addr, Blobs: blobs}, keytest.AccessKeyID)
			if err != nil {
				t.Fatalf("%s node %d: %v", kind, i, err)
			}
			keytest.CheckSuite(t, k)
			k.Close()
			// Only the other node's blob: this TPM is not enrolled in it.
			_, err = tpm.Open(context.Background(), tpm.Config{Device: "tcp://" + n.Addr, Blobs: blobs[1-i : 2-i]}, keytest.AccessKeyID)
			var ne *tpm.NotEnrolledError
			if !errors.As(err, &ne) {
				t.Fatalf("%s node %d opened the other node's blob: %v", kind, i, err)
			}
		}
	}
}

// wrap refuses targets that do not chain to the CA given, targets without
// a certificate unless allowed, and a secret not from a terminal.
func TestTPMWrapRefusals(t *testing.T) {
	ca, other := testenv.NewEKCA(t), testenv.NewEKCA(t)
	node := testenv.StartSWTPMWithEK(t, ca)
	stranger := testenv.StartSWTPMWithEK(t, other) // a real TPM, certified by another CA
	dir := t.TempDir()
	good := enrollFile(t, dir, "good.json", "-device", "tcp://"+node.Addr, "-chain", ca.Intermediate)
	foreign := enrollFile(t, dir, "foreign.json", "-device", "tcp://"+stranger.Addr, "-chain", other.Intermediate)
	srk := enrollFile(t, dir, "srk.json", "-device", "tcp://"+node.Addr, "-parent", tpm.ParentSRK)
	wrap := func(read func(string, io.Writer) (string, error), extra ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"-access-key", "AKIAIOSFODNN7EXAMPLE", "-ca", ca.Root, "-out", filepath.Join(dir, strconv.Itoa(len(extra))+"-"+filepath.Base(extra[len(extra)-1]))}, extra...)
		code := runTPMWrap(args, &stdout, &stderr, read)
		keytest.NoSecretIn(t, "wrap's output", append(stdout.Bytes(), stderr.Bytes()...))
		return code, stderr.String()
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"another CA":          {[]string{"-target", good, "-target", foreign}, "does not chain"},
		"SRK without -allow":  {[]string{"-target", srk}, "no EK certificate"},
		"forged parent Name":  {[]string{"-target", forge(t, good, dir)}, "parent_name is not the Name"},
		"certificate swapped": {[]string{"-target", swapCert(t, srk, good, dir)}, ""},
	} {
		if code, stderr := wrap(typed(t, keytest.Secret), c.args...); code == 0 || !strings.Contains(stderr, c.want) {
			t.Fatalf("%s: exit %d, %q", name, code, stderr)
		}
	}
	srkName := targetName(t, srk)
	if code, stderr := wrap(typed(t, keytest.Secret), "-allow-srk", targetName(t, good), "-target", srk); code == 0 || !strings.Contains(stderr, "no EK certificate") {
		t.Fatalf("an SRK target whose Name -allow-srk does not list: exit %d, %q", code, stderr)
	}
	if code, stderr := wrap(typed(t, keytest.Secret), "-allow-srk", strings.ToUpper(srkName), "-target", srk); code != 0 {
		t.Fatalf("an SRK target whose Name -allow-srk lists was refused: %q", stderr)
	}
	piped := func(prompt string, stderr io.Writer) (string, error) {
		r, w, _ := os.Pipe()
		defer r.Close()
		w.WriteString(keytest.Secret + "\n")
		w.Close()
		return readTerminal(r, prompt, stderr)
	}
	if code, stderr := wrap(piped, "-target", good); code == 0 || !strings.Contains(stderr, "terminal") {
		t.Fatalf("a secret from a pipe: exit %d, %q", code, stderr)
	}
}

// targetName is an enrolment's parent_name.
func targetName(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var target tpm.Target
	if err := json.Unmarshal(data, &target); err != nil {
		t.Fatal(err)
	}
	return target.Name
}

// forge rewrites an enrolment's Name.
func forge(t *testing.T, path, dir string) string {
	t.Helper()
	return editTarget(t, path, dir, "forged.json", func(tg *tpm.Target) { tg.Name = strings.Repeat("00", 34) })
}

// swapCert gives the SRK target the EK's genuine certificate, as if the
// SRK were certified: the certificate names another key, and an SRK
// takes no certificate at all.
func swapCert(t *testing.T, srk, ek, dir string) string {
	t.Helper()
	var donor tpm.Target
	data, _ := os.ReadFile(ek)
	_ = json.Unmarshal(data, &donor)
	return editTarget(t, srk, dir, "swapped.json", func(tg *tpm.Target) {
		tg.Parent = tpm.ParentEKECC
		tg.EKCertificate, tg.EKChain = donor.EKCertificate, donor.EKChain
	})
}

func editTarget(t *testing.T, path, dir, name string, edit func(*tpm.Target)) string {
	t.Helper()
	var tg tpm.Target
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &tg); err != nil {
		t.Fatal(err)
	}
	edit(&tg)
	out, _ := json.Marshal(tg)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type checker struct{ stranger *testenv.SWTPM }

// checkNodes runs aws-hmac tpm check on each node (its blob loads) and
// on a TPM that is not enrolled (exit 1, its Names given).
func (c checker) checkNodes(t *testing.T, nodes []*testenv.SWTPM, blobs string) {
	t.Helper()
	for i, n := range append(nodes, c.stranger) {
		var stdout, stderr bytes.Buffer
		code := runTPM([]string{"check", "-device", "tcp://" + n.Addr, "-blobs", blobs}, &stdout, &stderr)
		var st struct {
			Names     map[string]string `json:"parent_names"`
			Blob      int               `json:"blob"`
			BlobLoads bool              `json:"blob_loads"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
			t.Fatalf("check on TPM %d: %v %s", i, err, stderr.String())
		}
		enrolled := i < len(nodes)
		if enrolled && (code != 0 || st.Blob != i || !st.BlobLoads) || !enrolled && (code != 1 || st.Blob != -1 || st.BlobLoads || len(st.Names) != 1) {
			t.Fatalf("check on TPM %d: exit %d, %+v", i, code, st)
		}
	}
}

// -pcrs: each PCR 0-23 once, in order; a PCR listed twice is refused (its
// digest would hash it twice and no blob sealed to it would load).
func TestTPMEnrollPCRs(t *testing.T) {
	if got, err := parsePCRList("16, 7,0"); err != nil || !slices.Equal(got, []uint{0, 7, 16}) {
		t.Fatalf("16,7,0: %v %v", got, err)
	}
	for _, bad := range []string{"7,7", "24", "18446744073709551615", "-1", "x"} {
		if _, err := parsePCRList(bad); err == nil {
			t.Fatalf("-pcrs %s accepted", bad)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runTPMEnroll([]string{"-device", "tcp://127.0.0.1:1", "-pcrs", "7,7"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "twice") {
		t.Fatalf("enroll -pcrs 7,7: exit %d, %q", code, stderr.String())
	}
	for _, sub := range []string{"enroll", "wrap", "check"} {
		stderr.Reset()
		if code := runTPM([]string{sub, "-help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "Example") {
			t.Fatalf("tpm %s -help: exit %d, %q", sub, code, stderr.String())
		}
	}
}
