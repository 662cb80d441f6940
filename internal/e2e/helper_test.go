package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// awsCLI is the Debian awscli package's AWS CLI v2, whatever comes first on PATH.
const awsCLI = "/usr/bin/aws"

const minioMount = "aws-hmac-minio"

// helperEnv is a clean environment for the helper and the AWS CLI: Vault's
// address and token, a home of its own, no AWS variables.
func (w *world) helperEnv(t *testing.T, extra ...string) []string {
	home := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "VAULT_ADDR=" + w.vault.Addr, "VAULT_TOKEN=" + w.vault.Token,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
	return append(env, extra...)
}

func runCmd(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runHelper drives aws-hmac with real AWS clients: the AWS CLI v2 and
// aws-sdk-go-v2's default chain, against the STS peer and MinIO.
func (w *world) runHelper(t *testing.T) {
	if _, err := os.Stat(awsCLI); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s missing: make deps installs the awscli package", awsCLI)
		}
		t.Skip("awscli not installed: run make deps")
	}
	w.setupMinIOMount(t)
	w.helperCredentialProcess(t)
	w.helperExec(t)
	w.helperServe(t)
	w.helperProxy(t)
	w.helperHeaderPairs(t)
	t.Run("proxy-uploads", w.runProxy)
}

// setupMinIOMount: a mount whose key is MinIO's user, MinIO as STS.
func (w *world) setupMinIOMount(t *testing.T) {
	w.cli(t, "secrets", "enable", "-path="+minioMount, pluginName)
	w.cli(t, "write", minioMount+"/config", "access_key="+w.minio.AccessKey, "secret_key="+w.minio.SecretKey,
		"key_store=transit", "transit_address="+w.vault.Addr, "transit_token="+w.storeToken,
		"transit_key_name=aws-hmac-minio-helper", "sts_endpoint="+w.minio.Endpoint, "region=us-east-1", "skip_verification=true")
	w.cli(t, "write", minioMount+"/roles/deploy", "credential_type=assumed_role", "role_arns="+roleARN, "default_sts_ttl=15m")
	w.cli(t, "write", minioMount+"/roles/bucket", "allowed_services=s3", "allowed_regions=us-east-1", "allowed_hosts=127.0.0.1",
		"allowed_actions=s3:*", "allowed_paths=/"+w.minio.Bucket+",/"+w.minio.Bucket+"/*")
}

func (w *world) helperCredentialProcess(t *testing.T) {
	env := w.helperEnv(t)
	home := strings.TrimPrefix(env[1], "HOME=")
	conf := "[profile peer]\ncredential_process = " + helperBinary + " credential-process -role deploy\n" +
		"[profile minio]\ncredential_process = " + helperBinary + " credential-process -role deploy -mount " + minioMount + "\n"
	if err := os.WriteFile(filepath.Join(home, "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, env, awsCLI, "--profile", "peer", "--endpoint-url", w.peer.URL, "sts", "get-caller-identity", "--output", "json")
	if err != nil || !strings.Contains(out, "assumed-role/deploy/") {
		t.Fatalf("aws sts get-caller-identity with credential_process: %v\n%s", err, redact(out, w))
	}
	out, err = runCmd(t, env, awsCLI, "--profile", "minio", "--endpoint-url", w.minio.Endpoint, "s3", "ls")
	if err != nil || !strings.Contains(out, w.minio.Bucket) {
		t.Fatalf("aws s3 ls with credential_process: %v\n%s", err, redact(out, w))
	}
}

// helperExec: the child lists the bucket, holds no key, and sees the
// credentials refreshed within one run.
func (w *world) helperExec(t *testing.T) {
	env := w.helperEnv(t, "AWS_SECRET_ACCESS_KEY=must-not-reach-the-child")
	out, err := runCmd(t, env, helperBinary, "exec", "-role", "deploy", "-mount", minioMount, "--", awsCLI, "--endpoint-url", w.minio.Endpoint, "s3", "ls")
	if err != nil || !strings.Contains(out, w.minio.Bucket) {
		t.Fatalf("aws-hmac exec -- aws s3 ls: %v\n%s", err, redact(out, w))
	}
	out, err = runCmd(t, env, helperBinary, "exec", "-role", "deploy", "-mount", minioMount, "--", "env")
	if err != nil || strings.Contains(out, "AWS_SECRET_ACCESS_KEY") || strings.Contains(out, "AWS_ACCESS_KEY_ID") || strings.Contains(out, "VAULT_") ||
		!strings.Contains(out, "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:") {
		t.Fatalf("the child's environment: %v\n%s", err, redact(out, w))
	}
	script := `curl -fsS -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; echo; sleep 2; curl -fsS -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_CONTAINER_CREDENTIALS_FULL_URI"`
	out, err = runCmd(t, env, helperBinary, "exec", "-role", "deploy", "-mount", minioMount, "-refresh-every", "1s", "--", "sh", "-c", script)
	var keys []string
	for _, line := range strings.Split(out, "\n") {
		if id := accessKeyOf(line); id != "" {
			keys = append(keys, id)
		}
	}
	if err != nil || len(keys) != 2 || keys[0] == keys[1] {
		t.Fatalf("no refresh within one run: %v, access keys %v", err, keys)
	}
	if _, err := runCmd(t, env, helperBinary, "exec", "-role", "deploy", "-mount", minioMount, "--", "sh", "-c", "exit 7"); exitCode(err) != 7 {
		t.Fatalf("exec did not pass on the child's status: %v", err)
	}
}

func accessKeyOf(jsonLine string) string {
	var c struct {
		AccessKeyID string `json:"AccessKeyId"`
	}
	_ = json.Unmarshal([]byte(jsonLine), &c)
	return c.AccessKeyID
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

// helperServe: the endpoint wants its token, listens on loopback only, and
// aws-sdk-go-v2's default chain reads it.
func (w *world) helperServe(t *testing.T) {
	if out, err := runCmd(t, w.helperEnv(t), helperBinary, "serve", "-role", "deploy", "-listen", "0.0.0.0:0"); err == nil {
		t.Fatalf("serve on 0.0.0.0 accepted: %s", out)
	}
	cmd := exec.Command(helperBinary, "serve", "-role", "deploy")
	cmd.Env = w.helperEnv(t)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	vars := map[string]string{}
	scan := bufio.NewScanner(stdout)
	for len(vars) < 2 && scan.Scan() {
		k, v, _ := strings.Cut(strings.TrimPrefix(scan.Text(), "export "), "=")
		vars[k] = v
	}
	uri, token := vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"], vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
	if !strings.HasPrefix(uri, "http://127.0.0.1:") || len(token) < 32 {
		t.Fatalf("serve printed %v", vars)
	}
	for tok, want := range map[string]int{"": http.StatusUnauthorized, "wrong": http.StatusUnauthorized, token: http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, uri, nil)
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		if code, _ := send(t, req); code != want {
			t.Fatalf("token %q: %d, want %d", tok, code, want)
		}
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	// The serve above uses the main mount, whose STS is the peer.
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(w.peer.URL) }).
		GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil || !strings.Contains(aws.ToString(out.Arn), "assumed-role/deploy/") {
		t.Fatalf("aws-sdk-go-v2 through serve: %v", err)
	}
}

// helperProxy: the unsigning AWS CLI through the proxy reaches MinIO; a
// request outside the role's scope gets Vault's 403.
func (w *world) helperProxy(t *testing.T) {
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(helperBinary, "proxy", "-role", "bucket", "-mount", minioMount, "-listen", addr, "-upstream", w.minio.Endpoint)
	cmd.Env = w.helperEnv(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	w.eventually(t, "proxy listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	env := w.helperEnv(t)
	out, err := runCmd(t, env, awsCLI, "--endpoint-url", "http://"+addr, "--no-sign-request", "s3", "ls", "s3://"+w.minio.Bucket)
	if err != nil {
		t.Fatalf("aws s3 ls through the proxy: %v\n%s", err, out)
	}
	out, err = runCmd(t, env, awsCLI, "--endpoint-url", "http://"+addr, "--no-sign-request", "s3", "ls", "s3://other-bucket")
	if err == nil || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, "Vault refused to sign") {
		t.Fatalf("out of scope through the proxy: %v\n%s", err, out)
	}
	w.helperProxySTS(t)
}

// helperProxySTS: a Query-protocol service through the proxy, its form body
// seen by the role's action scope: GetCallerIdentity passes, GetSessionToken
// gets Vault's 403.
func (w *world) helperProxySTS(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(helperBinary, "proxy", "-role", "signer", "-service", "sts", "-listen", addr, "-upstream", w.peer.URL)
	cmd.Env = w.helperEnv(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	w.eventually(t, "sts proxy listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	env := w.helperEnv(t)
	out, err := runCmd(t, env, awsCLI, "--endpoint-url", "http://"+addr, "--no-sign-request", "sts", "get-caller-identity")
	if err != nil || !strings.Contains(out, "user/vault") {
		t.Fatalf("aws sts get-caller-identity through the proxy: %v\n%s", err, out)
	}
	out, err = runCmd(t, env, awsCLI, "--endpoint-url", "http://"+addr, "--no-sign-request", "sts", "get-session-token")
	if err == nil || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, "mints credentials") {
		t.Fatalf("GetSessionToken through the proxy: %v\n%s", err, redact(out, w))
	}
}

// helperHeaderPairs: the vault CLI's headers=Name=value form signs a request
// the peer accepts.
func (w *world) helperHeaderPairs(t *testing.T) {
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	out := w.cli(t, "write", "-format=json", mount+"/sign/signer", "method=POST", "url="+w.peer.URL+"/", "service=sts",
		"body="+base64.StdEncoding.EncodeToString([]byte(body)), "headers=Content-Type=application/x-www-form-urlencoded")
	var s struct {
		Data struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		}
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.Data.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range s.Data.Headers {
		req.Header.Set(k, v)
	}
	if code, answer := send(t, req); code != http.StatusOK || !strings.Contains(answer, "user/vault") {
		t.Fatalf("the peer answered %d to a CLI-signed request: %s", code, answer)
	}
}
