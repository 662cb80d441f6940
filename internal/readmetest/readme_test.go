package readmetest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

const (
	readmeRoleARN = "arn:aws:iam::123456789012:role/deploy"
	reportKey     = "2026/q3.csv"
)

// repoRoot is where the README's commands run, as a reader runs them from a
// clone.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readmeBlocks(t *testing.T) []Block {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// world is what the README's examples run against: a Vault server with file
// storage, the STS peer as AWS's STS, MinIO as S3, SoftHSM2 and swtpm.
type world struct {
	vault  *testenv.Vault
	peer   *ststest.Server
	minio  *testenv.MinIO
	home   string
	secret string
	inputs map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{}
	w.minio = testenv.StartMinIO(t)
	w.peer = ststest.New()
	t.Cleanup(w.peer.Close)
	w.peer.AddUserKey("vault", w.minio.AccessKey, w.minio.SecretKey)
	// The README's revocation example needs the role to have a boundary.
	w.peer.AddRole(ststest.Role{ARN: readmeRoleARN, MaxSessionDuration: 2 * time.Hour,
		PermissionsBoundary: "arn:aws:iam::123456789012:policy/vault-minted-sessions"})
	w.secret = w.minio.SecretKey
	hsm := testenv.NewSoftHSM(t, "readme-other")
	tpm := testenv.StartSWTPM(t)
	w.vault = testenv.StartVault(t, testenv.VaultOptions{FileStorage: true, LogLevel: "info"})
	w.home = testenv.TempDir(t, "readme-home-")
	w.putReport(t)
	host := strings.TrimPrefix(w.minio.Endpoint, "http://")
	w.inputs = map[string]string{
		"PLUGIN_DIR":    w.vault.PluginDir,
		"ACCESS_KEY_ID": w.minio.AccessKey,
		"REGION":        w.minio.Region,
		"STS_ENDPOINT":  w.peer.URL,
		"IAM_ENDPOINT":  w.peer.URL,
		"ROLE_ARN":      readmeRoleARN,
		"S3_ENDPOINT":   w.minio.Endpoint,
		"S3_HOST":       host,
		"BUCKET":        w.minio.Bucket,
		"SOFTHSM2_CONF": hsm.ConfPath,
		"PKCS11_MODULE": hsm.Module,
		"TPM_DEVICE":    "tcp://" + tpm.Addr,
		"TPM_ADDRESSES": tpm.Addr,
	}
	w.writeSecretFile(t)
	return w
}

// putReport puts the object the README's S3 examples read.
func (w *world) putReport(t *testing.T) {
	t.Helper()
	client := s3.New(s3.Options{
		Region:       w.minio.Region,
		BaseEndpoint: aws.String(w.minio.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(w.minio.AccessKey, w.minio.SecretKey, ""),
	})
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(w.minio.Bucket), Key: aws.String(reportKey),
		Body: strings.NewReader("region,total\neu-west-3,42\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeSecretFile does what the README asks the reader to do by hand: the
// secret in a file only they can read.
func (w *world) writeSecretFile(t *testing.T) {
	t.Helper()
	dir := filepath.Join(w.home, ".aws-hmac")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(w.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// script is every runnable block in order, each announcing its line so a
// failure names the example.
func (w *world) script(t *testing.T, blocks []Block) (string, int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("set -euo pipefail\n")
	names := make([]string, 0, len(w.inputs))
	for name := range w.inputs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b.WriteString(name + "=" + strconv.Quote(w.inputs[name]) + "\n")
	}
	b.WriteString(`trap 'echo "README.md:$README_LINE: this example failed" >&2' ERR` + "\n")
	run := 0
	for _, blk := range blocks {
		ok, err := blk.Runnable()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		run++
		b.WriteString("README_LINE=" + strconv.Itoa(blk.Line) + "\n")
		b.WriteString("echo \"### README.md:" + strconv.Itoa(blk.Line) + "\"\n")
		b.WriteString(blk.Source + "\n")
	}
	b.WriteString("echo README-EXAMPLES-DONE\n")
	return b.String(), run
}

func (w *world) env(t *testing.T) []string {
	t.Helper()
	vaultBin := os.Getenv("VAULT_BIN")
	path := filepath.Dir(vaultBin) + ":" + filepath.Join(repoRoot(t), "bin") + ":/usr/bin:/bin:" + os.Getenv("PATH")
	env := []string{"PATH=" + path, "HOME=" + w.home, "VAULT_ADDR=" + w.vault.Addr, "VAULT_TOKEN=" + w.vault.Token,
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOTOOLCHAIN=local", "CI=" + os.Getenv("CI")}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOFLAGS=") || strings.HasPrefix(kv, "GOPROXY=") || strings.HasPrefix(kv, "CACHE=") {
			env = append(env, kv)
		}
	}
	return env
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestREADMEExamples runs the README's examples, in order, as a reader
// would: from the clone, against Vault, the STS peer, MinIO, SoftHSM2 and
// swtpm. An example that fails fails the test and names its line.
func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault, MinIO, SoftHSM2 and swtpm")
	}
	blocks := readmeBlocks(t)
	w := newWorld(t)
	checkInputs(t, blocks, w.inputs)
	script, run := w.script(t, blocks)
	if run < 10 {
		t.Fatalf("only %d README examples are runnable; the README's examples are meant to run", run)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = repoRoot(t)
	cmd.Env = w.env(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.ReplaceAll(out.String(), w.secret, "[the secret]")
	if err != nil || !strings.Contains(text, "README-EXAMPLES-DONE") {
		t.Fatalf("README examples failed (%v):\n%s", err, tail(text, 80))
	}
	if strings.Contains(out.String(), w.secret) {
		t.Error("an example printed the AWS secret")
	}
	t.Logf("%d README examples ran", run)
}

// checkInputs holds the README's inputs block and the test to the same
// names: a README that asks the reader for something new needs the test to
// supply it.
func checkInputs(t *testing.T, blocks []Block, inputs map[string]string) {
	t.Helper()
	var asked []string
	for _, b := range blocks {
		if b.Mark == "inputs" {
			asked = append(asked, b.InputNames()...)
		}
	}
	slices.Sort(asked)
	asked = slices.Compact(asked)
	var given []string
	for name := range inputs {
		given = append(given, name)
	}
	slices.Sort(given)
	if !slices.Equal(asked, given) {
		t.Fatalf("the README's inputs %v and the test's %v differ", asked, given)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
