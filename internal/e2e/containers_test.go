package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
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
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// runContainers: aws-hmac serve where applications live — a token file an
// operator rotates, TLS on any address, link-local addresses, Vault Agent
// holding the only token, and IMDSv2. Uses the main mount's deploy role,
// whose STS is the peer.
func (w *world) runContainers(t *testing.T) {
	if _, err := os.Stat(awsCLI); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s missing: make deps installs the awscli package", awsCLI)
		}
		t.Skip("awscli not installed: run make deps")
	}
	t.Run("token-file", w.containersTokenFile)
	t.Run("tls", w.containersTLS)
	t.Run("link-local", w.containersLinkLocal)
	t.Run("agent", w.containersAgent)
	t.Run("imds", w.containersIMDS)
	t.Run("pods", w.containersPods)
}

// served is a running aws-hmac serve and what it printed to export.
type served struct {
	cmd  *exec.Cmd
	vars map[string]string
}

// startServe runs aws-hmac serve with env and args, and reads its exports.
func startServe(t *testing.T, env []string, want int, args ...string) *served {
	t.Helper()
	cmd := exec.Command(helperBinary, append([]string{"serve"}, args...)...)
	cmd.Env = env
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := &served{cmd: cmd, vars: map[string]string{}}
	scan := bufio.NewScanner(stdout)
	for len(s.vars) < want && scan.Scan() {
		k, v, _ := strings.Cut(strings.TrimPrefix(scan.Text(), "export "), "=")
		s.vars[k] = v
	}
	if len(s.vars) < want {
		t.Fatalf("serve printed %d variables, want %d", len(s.vars), want)
	}
	return s
}

// sdkConfig is aws-sdk-go-v2's default chain under env alone: no config
// files, no other AWS variables.
func sdkConfig(t *testing.T, env map[string]string, opts ...func(*config.LoadOptions) error) aws.Config {
	t.Helper()
	for _, k := range []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
		t.Setenv(k, env[k])
		if env[k] == "" {
			os.Unsetenv(k)
		}
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", strconv.FormatBool(env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == ""))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg, err := config.LoadDefaultConfig(context.Background(), append(opts, config.WithRegion("us-east-1"))...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sdkIdentity is the ARN the STS peer sees for cfg's credentials, fetched
// anew (as on a refresh) when fresh is set.
func (w *world) sdkIdentity(cfg aws.Config, fresh bool) (string, error) {
	if c, ok := cfg.Credentials.(*aws.CredentialsCache); ok && fresh {
		c.Invalidate()
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(w.peer.URL) }).
		GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

// cliIdentity is the ARN the STS peer sees for the AWS CLI v2 under env.
func (w *world) cliIdentity(t *testing.T, env []string) (string, error) {
	t.Helper()
	out, err := runCmd(t, env, awsCLI, "--endpoint-url", w.peer.URL, "sts", "get-caller-identity", "--query", "Arn", "--output", "text")
	return strings.TrimSpace(redact(out, w)), err
}

// containerGet asks the endpoint with a token and returns the status.
func containerGet(t *testing.T, uri, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, uri, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	code, _ := send(t, req)
	return code
}

// rotate replaces the token file's content atomically, as an operator does.
func rotate(t *testing.T, path string) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return tok
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const deployARN = "assumed-role/deploy/"

// containersTokenFile: serve writes its token to a 0600 file and prints the
// file, not the token; the SDK configured only by the URI and the file gets
// credentials, and after the operator rotates the file, the same config
// refreshes with the new token while the old one is refused.
func (w *world) containersTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	s := startServe(t, w.helperEnv(t), 2, "-role", "deploy", "-token-file", path)
	uri, file := s.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"], s.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
	fi, err := os.Stat(path)
	if file != path || err != nil || fi.Mode().Perm() != 0o600 || s.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] != "" {
		t.Fatalf("serve printed %v; the file's mode %v (%v)", keysOf(s.vars), fi.Mode().Perm(), err)
	}
	env := map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": file}
	cfg := sdkConfig(t, env)
	if got, err := w.sdkIdentity(cfg, false); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws-sdk-go-v2 with the token file: %q %v", got, err)
	}
	old := readToken(t, path)
	tok := rotate(t, path)
	if containerGet(t, uri, old) != http.StatusUnauthorized || containerGet(t, uri, tok) != http.StatusOK {
		t.Fatal("the rotation did not take effect at once")
	}
	if got, err := w.sdkIdentity(cfg, true); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws-sdk-go-v2 refreshing after the rotation: %q %v", got, err)
	}
	// The Debian AWS CLI v2 (2.9) reads no token file: it is given the
	// file's content; the pre-rotation token is refused.
	cli := w.helperEnv(t, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONTAINER_CREDENTIALS_FULL_URI="+uri)
	if got, err := w.cliIdentity(t, append(cli, "AWS_CONTAINER_AUTHORIZATION_TOKEN="+readToken(t, path))); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws CLI with the rotated token: %v\n%s", err, got)
	}
	if got, err := w.cliIdentity(t, append(cli, "AWS_CONTAINER_AUTHORIZATION_TOKEN="+old)); err == nil {
		t.Fatalf("aws CLI with the pre-rotation token: %s", got)
	}
	rotate(t, path)
	if got, err := w.sdkIdentity(cfg, true); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws-sdk-go-v2 after a second rotation: %q %v", got, err)
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// containersTLS: on a non-loopback address with -tls-cert/-tls-key, the SDK
// trusting the CA gets credentials over HTTPS; without TLS that address is
// refused. aws-sdk-go-v2 does not apply AWS_CA_BUNDLE to the container
// endpoint (only to services; it fails "signed by unknown authority"): the
// CA is in the system store or, as here, given in code.
func (w *world) containersTLS(t *testing.T) {
	if out, err := runCmd(t, w.helperEnv(t), helperBinary, "serve", "-role", "deploy", "-listen", "0.0.0.0:0"); err == nil || !strings.Contains(out, "-tls-cert") {
		t.Fatalf("serve on 0.0.0.0 without TLS: %v %s", err, redact(out, w))
	}
	dir := t.TempDir()
	cert, key, _ := testenv.SelfSigned(t, dir)
	addr := "0.0.0.0:" + strconv.Itoa(testenv.FreePort(t))
	s := startServe(t, w.helperEnv(t), 2, "-role", "deploy", "-listen", addr, "-tls-cert", cert, "-tls-key", key, "-token-file", filepath.Join(dir, "token"))
	uri := s.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
	if !strings.HasPrefix(uri, "https://localhost:") {
		t.Fatalf("serve printed %s", uri)
	}
	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	cfg := sdkConfig(t, map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": s.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]},
		config.WithEndpointCredentialOptions(func(o *endpointcreds.Options) { o.HTTPClient = client }))
	if got, err := w.sdkIdentity(cfg, false); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws-sdk-go-v2 over HTTPS: %q %v", got, err)
	}
}

// containersLinkLocal: ECS's and EKS Pod Identity's addresses pass the
// check (binding needs the interface to have them, which tests cannot
// arrange); a neighbouring address does not.
func (w *world) containersLinkLocal(t *testing.T) {
	out, err := runCmd(t, w.helperEnv(t), helperBinary, "serve", "-role", "deploy", "-listen", "169.254.170.9:80")
	if err == nil || !strings.Contains(out, "must be a loopback address") {
		t.Fatalf("169.254.170.9: %v %s", err, redact(out, w))
	}
	for _, addr := range []string{"169.254.170.2", "169.254.170.23"} {
		l, lerr := net.Listen("tcp", addr+":0")
		if lerr == nil {
			l.Close()
			t.Logf("%s is on an interface here: not proving the refusal to bind", addr)
			continue
		}
		out, err := runCmd(t, w.helperEnv(t), helperBinary, "serve", "-role", "deploy", "-listen", addr+":0")
		if err == nil || strings.Contains(out, "must be a loopback") || !strings.Contains(out, "assign requested address") {
			t.Fatalf("%s: accepted by the check, refused by the system expected: %v %s", addr, err, redact(out, w))
		}
	}
}

// containersAgent: the helper, with no token of its own (no VAULT_TOKEN,
// no ~/.vault-token), mints and refreshes credentials through a Vault
// Agent whose API proxy forces the AppRole auto-auth token; straight at
// Vault the same helper is refused.
func (w *world) containersAgent(t *testing.T) {
	agentAddr, sink, secretID := w.startAgent(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := runCmd(t, append(env, "VAULT_ADDR="+w.vault.Addr), helperBinary, "credential-process", "-role", "deploy"); err == nil {
		t.Fatalf("the helper without a token got credentials from Vault itself: %s", redact(out, w))
	}
	s := startServe(t, env, 2, "-role", "deploy", "-address", agentAddr, "-refresh-every", "1s")
	uri, tok := s.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"], s.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
	var keys []string
	for i := range 2 {
		if i > 0 {
			time.Sleep(1500 * time.Millisecond)
		}
		req, _ := http.NewRequest(http.MethodGet, uri, nil)
		req.Header.Set("Authorization", tok)
		code, body := send(t, req)
		keys = append(keys, accessKeyOf(body))
		if code != http.StatusOK {
			t.Fatalf("through the agent: %d", code)
		}
	}
	if keys[0] == "" || keys[0] == keys[1] {
		t.Fatal("no refresh through the agent")
	}
	cfg := sdkConfig(t, map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri, "AWS_CONTAINER_AUTHORIZATION_TOKEN": tok})
	if got, err := w.sdkIdentity(cfg, false); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws-sdk-go-v2 through the agent: %q %v", got, err)
	}
	w.holdsNoToken(t, s.cmd.Process.Pid, env, []string{readToken(t, sink), secretID, w.vault.Token})
}

// holdsNoToken: the helper's environment, command line and open files
// carry no Vault token, and its home holds no file.
func (w *world) holdsNoToken(t *testing.T, pid int, env []string, secrets []string) {
	t.Helper()
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	environ, err := os.ReadFile(filepath.Join(proc, "environ"))
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
	if strings.Contains(string(environ), "VAULT_TOKEN") {
		t.Fatal("the helper's environment has VAULT_TOKEN")
	}
	fds, _ := os.ReadDir(filepath.Join(proc, "fd"))
	var open []string
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(proc, "fd", fd.Name())); err == nil && strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "/dev/") && !strings.HasPrefix(target, "/sys/") { // the runtime reads its cgroup CPU quota
			open = append(open, target)
		}
	}
	for _, s := range secrets {
		if s != "" && (strings.Contains(string(environ), s) || strings.Contains(string(cmdline), s)) {
			t.Fatal("a Vault token or the secret ID is in the helper's environment or command line")
		}
	}
	if len(open) > 0 {
		t.Fatalf("the helper holds files open: %v", open)
	}
	home := strings.TrimPrefix(env[1], "HOME=")
	if entries, _ := os.ReadDir(home); len(entries) > 0 {
		t.Fatalf("the helper's home has %d entries", len(entries))
	}
}

// startAgent runs Vault Agent with AppRole auto-auth and an API proxy that
// forces its token on every request; it returns the proxy's address, the
// sink holding the agent's token and the secret ID.
func (w *world) startAgent(t *testing.T) (addr, sink, secretID string) {
	t.Helper()
	const approle = "approle-containers"
	w.cli(t, "auth", "enable", "-path="+approle, "approle")
	if err := w.vault.Client.Sys().PutPolicy("aws-hmac-deploy", `path "`+mount+`/creds/deploy" { capabilities = ["read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	w.cli(t, "write", "auth/"+approle+"/role/app", "token_policies=aws-hmac-deploy", "token_ttl=10m")
	roleID, err := w.vault.Client.Logical().Read("auth/" + approle + "/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := w.vault.Client.Logical().Write("auth/"+approle+"/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secretID = sid.Data["secret_id"].(string)
	roleFile, secretFile, sink := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id"), filepath.Join(dir, "sink")
	_ = os.WriteFile(roleFile, []byte(roleID.Data["role_id"].(string)), 0o600)
	_ = os.WriteFile(secretFile, []byte(secretID), 0o600)
	port := testenv.FreePort(t)
	conf := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "approle" {
    mount_path = "auth/%s"
    config = { role_id_file_path = %q, secret_id_file_path = %q, remove_secret_id_file_after_reading = false }
  }
  sink "file" { config = { path = %q } }
}
api_proxy { use_auto_auth_token = "force" }
listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}
`, w.vault.Addr, approle, roleFile, secretFile, sink, port)
	confPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(os.Getenv("VAULT_BIN"), "agent", "-config="+confPath)
	agent.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	w.eventually(t, "vault agent authenticated and listening", func() bool {
		b, _ := os.ReadFile(sink)
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil && len(b) > 0
	})
	return "http://127.0.0.1:" + strconv.Itoa(port), sink, secretID
}

// containersIMDS: serve -imds answers as IMDSv2; the AWS CLI and the SDK
// pointed at it by AWS_EC2_METADATA_SERVICE_ENDPOINT get the role's
// credentials; a GET without a session token is refused.
func (w *world) containersIMDS(t *testing.T) {
	s := startServe(t, w.helperEnv(t), 3, "-role", "deploy", "-imds")
	endpoint := s.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("serve -imds printed %v", keysOf(s.vars))
	}
	if code, _ := send(t, mustRequest(t, http.MethodGet, endpoint+"latest/meta-data/iam/security-credentials/")); code != http.StatusUnauthorized {
		t.Fatalf("IMDSv1 GET: %d", code)
	}
	var env []string
	for _, kv := range w.helperEnv(t) {
		if !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+endpoint)
	if got, err := w.cliIdentity(t, env); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws CLI through IMDS: %v\n%s", err, got)
	}
	cfg := sdkConfig(t, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint})
	if got, err := w.sdkIdentity(cfg, false); err != nil || !strings.Contains(got, deployARN) {
		t.Fatalf("aws-sdk-go-v2 through IMDS: %q %v", got, err)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

const podIssuer = "https://kubernetes.default.svc"

// containersPods: two pods, each with its own service-account JWT, get two
// different roles from one helper holding no token; a pod's JWT does not
// get the other's role, nor does a JWT from another signer.
func (w *world) containersPods(t *testing.T) {
	key := w.setupPodAuth(t)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "VAULT_ADDR=" + w.vault.Addr}
	startServe(t, env, 2, "-pod-jwt-mount", "jwt-pods", "-listen", addr)
	w.eventually(t, "pod endpoint listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	dir := t.TempDir()
	pods := []struct{ sa, role, want string }{
		{"system:serviceaccount:apps:deployer", "deploy", deployARN},
		{"system:serviceaccount:apps:reporter", "session", "user/vault"},
	}
	jwts := map[string]string{}
	for _, p := range pods {
		jwt := signJWT(t, key, p.sa)
		jwts[p.role] = jwt
		file := filepath.Join(dir, p.role)
		if err := os.WriteFile(file, []byte(jwt), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := sdkConfig(t, map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://" + addr + "/roles/" + p.role,
			"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": file})
		if got, err := w.sdkIdentity(cfg, false); err != nil || !strings.Contains(got, p.want) {
			t.Fatalf("pod %s for role %s: %q %v", p.sa, p.role, got, err)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, c := range map[string]struct{ role, jwt string }{
		"the deployer's JWT for session": {"session", jwts["deploy"]},
		"the reporter's JWT for deploy":  {"deploy", jwts["session"]},
		"a JWT from another signer":      {"deploy", signJWT(t, other, pods[0].sa)},
		"not a JWT":                      {"deploy", "x"},
	} {
		if code := containerGet(t, "http://"+addr+"/roles/"+c.role, c.jwt); code != http.StatusForbidden {
			t.Fatalf("%s: %d", name, code)
		}
	}
}

// setupPodAuth: a JWT auth mount trusting a key made here, as a cluster's
// service-account issuer; role deploy for the deployer, session for the reporter.
func (w *world) setupPodAuth(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	w.cli(t, "auth", "enable", "-path=jwt-pods", "jwt")
	c := w.vault.Client.Logical()
	if _, err := c.Write("auth/jwt-pods/config", map[string]any{"jwt_validation_pubkeys": []string{pub}, "bound_issuer": podIssuer}); err != nil {
		t.Fatal(err)
	}
	for role, sa := range map[string]string{"deploy": "deployer", "session": "reporter"} {
		if err := w.vault.Client.Sys().PutPolicy("pod-"+role, `path "`+mount+`/creds/`+role+`" { capabilities = ["read"] }`); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write("auth/jwt-pods/role/"+role, map[string]any{"role_type": "jwt", "user_claim": "sub",
			"bound_audiences": []string{"vault"}, "bound_subject": "system:serviceaccount:apps:" + sa,
			"token_policies": []string{"pod-" + role}, "token_ttl": "10m"}); err != nil {
			t.Fatal(err)
		}
	}
	return key
}

// signJWT is a projected service-account token for sub, ES256.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, sub string) string {
	t.Helper()
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	now := time.Now().Unix()
	input := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": podIssuer, "sub": sub, "aud": []string{"vault"}, "iat": now, "nbf": now - 5, "exp": now + 600})
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
