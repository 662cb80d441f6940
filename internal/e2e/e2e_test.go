// Package e2e runs the plugin as users run it: the binary registered by
// SHA-256 in a real Vault server, driven by the vault CLI, the HTTP API and
// Vault Agent, against each of the four key stores, an STS peer that checks
// signatures, and MinIO.
package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/api"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

const (
	pluginName = "vault-plugin-aws-hmac"
	mount      = "aws-hmac"
	roleARN    = "arn:aws:iam::123456789012:role/deploy"
)

var pluginBinary, helperBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugin-")
	if err != nil {
		panic(err)
	}
	pluginBinary = filepath.Join(dir, pluginName)
	helperBinary = filepath.Join(dir, "aws-hmac")
	for out, pkg := range map[string]string{pluginBinary: "vault-plugin-aws-hmac", helperBinary: "aws-hmac"} {
		build := exec.Command("go", "build", "-o", out, "github.com/awshmac/vault-plugin-aws-hmac/cmd/"+pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build "+pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is everything one run needs: Vault with the plugin, the key
// stores, the STS peer and MinIO.
type world struct {
	vault       *testenv.Vault
	hsm         *testenv.SoftHSM
	tpm         *testenv.SWTPM
	minio       *testenv.MinIO
	peer        *ststest.Server
	storeToken  string // limited token the plugin uses for transit
	tpmPassword string
	secretForms []string // what must never appear anywhere
}

func setup(t *testing.T) *world {
	t.Helper()
	w := &world{}
	w.hsm = testenv.NewSoftHSM(t, "aws-hmac-e2e")
	w.tpm = testenv.StartSWTPM(t)
	w.minio = testenv.StartMinIO(t)
	w.peer = ststest.New()
	t.Cleanup(w.peer.Close)
	w.peer.AddUserKey("vault", w.minio.AccessKey, w.minio.SecretKey)
	w.peer.AddRole(ststest.Role{ARN: roleARN, MaxSessionDuration: 2 * time.Hour})

	w.vault = testenv.StartVault(t, testenv.VaultOptions{FileStorage: true, Audit: true})
	// The operator's allow-lists: this token's library and this swtpm.
	env := append(w.hsm.Env(), "AWS_HMAC_PKCS11_MODULES="+w.hsm.Module, "AWS_HMAC_TPM_ADDRESSES="+w.tpm.Addr,
		"AWS_HMAC_TEST_MIN_ROTATION_PERIOD=2s") // scheduled rotation without waiting an hour
	sum := w.vault.RegisterPlugin(t, pluginBinary, pluginName, env...)
	if len(sum) != 64 {
		t.Fatalf("sha256 %q", sum)
	}
	w.cli(t, "secrets", "enable", "-path="+mount, pluginName)
	w.storeToken = w.transitStoreToken(t)
	w.tpmPassword = "tpm-auth-" + hex.EncodeToString([]byte(t.Name()))[:8]
	w.collectSecretForms()
	return w
}

// transitStoreToken mounts transit with the KEK and returns the plugin's
// transit token: HMAC and import, never the key's config, export or backup.
func (w *world) transitStoreToken(t *testing.T) string {
	t.Helper()
	c := w.vault.Client
	if err := c.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/kek", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	policy := `
path "transit/hmac/*"       { capabilities = ["update"] }
path "transit/keys/*"       { capabilities = ["read", "create", "update"] }
path "transit/wrapping_key" { capabilities = ["read"] }
path "transit/encrypt/kek"  { capabilities = ["update"] }
path "transit/decrypt/kek"  { capabilities = ["update"] }
path "transit/keys/+/config" { capabilities = ["deny"] }
path "transit/export/*"     { capabilities = ["deny"] }
path "transit/backup/*"     { capabilities = ["deny"] }
`
	if err := c.Sys().PutPolicy("aws-hmac-transit", policy); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"aws-hmac-transit"}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Auth.ClientToken
}

// collectSecretForms lists what must never appear anywhere: the MinIO
// secret and its signing keys around today, the HSM PINs, the TPM password
// and the transit token, raw, hex and base64.
func (w *world) collectSecretForms() {
	secret := w.minio.SecretKey
	forms := []string{secret, "AWS4" + secret, w.hsm.PIN, w.hsm.SOPIN, w.tpmPassword, w.storeToken}
	now := time.Now().UTC()
	for _, day := range []time.Time{now.Add(-24 * time.Hour), now, now.Add(24 * time.Hour)} {
		kDate := mac([]byte("AWS4"+secret), day.Format("20060102"))
		kRegion := mac(kDate, "us-east-1")
		forms = append(forms, string(kDate))
		for _, svc := range []string{"sts", "s3"} {
			kService := mac(kRegion, svc)
			forms = append(forms, string(kService), string(mac(kService, "aws4_request")))
		}
		forms = append(forms, string(kRegion))
	}
	for _, f := range forms {
		w.secretForms = append(w.secretForms, f, hex.EncodeToString([]byte(f)), base64.StdEncoding.EncodeToString([]byte(f)),
			base64.RawStdEncoding.EncodeToString([]byte(f)), base64.URLEncoding.EncodeToString([]byte(f)))
	}
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// cli runs the vault CLI against the server and returns its output.
func (w *world) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := w.tryCLI(args...)
	if err != nil {
		t.Fatalf("vault %s: %v\n%s", args[0], err, redact(out, w))
	}
	return out
}

func (w *world) tryCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv("VAULT_BIN"), args...)
	cmd.Env = append(os.Environ(), w.vault.CLIEnv()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func redact(s string, w *world) string {
	for _, f := range w.secretForms {
		if len(f) >= 6 {
			s = strings.ReplaceAll(s, f, "[secret]")
		}
	}
	return s
}

// storeFields is the config each key store needs, reaching the real component.
func (w *world) storeFields(store string) []string {
	switch store {
	case "transit":
		return []string{"transit_address=" + w.vault.Addr, "transit_token=" + w.storeToken}
	case "pkcs11":
		return []string{"pkcs11_module=" + w.hsm.Module, "pkcs11_token_label=" + w.hsm.Label, "pkcs11_pin=" + w.hsm.PIN}
	case "tpm":
		return []string{"tpm_device=tcp://" + w.tpm.Addr, "tpm_password=" + w.tpmPassword}
	case "tink":
		return []string{"tink_kek_uri=hcvault://" + strings.TrimPrefix(w.vault.Addr, "http://") + "/transit/keys/kek",
			"tink_vault_address=" + w.vault.Addr, "tink_vault_token=" + w.storeToken}
	}
	return nil
}

type stsCreds struct {
	AccessKey     string `json:"access_key"`
	SecretKey     string `json:"secret_key"`
	SessionToken  string `json:"session_token"`
	SecurityToken string `json:"security_token"`
	ARN           string `json:"arn"`
	Expiration    string `json:"expiration"`
	TTL           int    `json:"ttl"`
}

func (w *world) peerIdentity(t *testing.T, c stsCreds) string {
	t.Helper()
	client := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.peer.URL),
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken)})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("credentials from Vault refused by the STS peer: %v", err)
	}
	return aws.ToString(out.Arn)
}

// listBuckets lists MinIO's buckets with temporary credentials, signed by sigv4.
func (w *world) listBuckets(t *testing.T, c stsCreds) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.minio.Endpoint+"/", nil)
	req.Header.Set("X-Amz-Content-Sha256", sigv4.EmptyStringSHA256)
	err := sigv4.NewSigner().SignHTTP(context.Background(), awshmac.NewStaticKey(c.AccessKey, c.SecretKey), req,
		sigv4.EmptyStringSHA256, "s3", "us-east-1", time.Now(), func(o *sigv4.SignerOptions) {
			o.SessionToken = c.SessionToken
			o.DisableURIPathEscaping = true
		})
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func readCredsCLI(t *testing.T, w *world, path string, args ...string) stsCreds {
	t.Helper()
	out := w.cli(t, append([]string{"read", "-format=json", mount + "/" + path}, args...)...)
	var secret struct {
		LeaseID       string   `json:"lease_id"`
		LeaseDuration int      `json:"lease_duration"`
		Renewable     bool     `json:"renewable"`
		Data          stsCreds `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &secret); err != nil {
		t.Fatalf("vault read output: %v", err)
	}
	if secret.LeaseID == "" || secret.Renewable || secret.LeaseDuration <= 0 || secret.LeaseDuration > secret.Data.TTL+1 {
		t.Fatalf("lease %q duration %d renewable %v for ttl %d", secret.LeaseID, secret.LeaseDuration, secret.Renewable, secret.Data.TTL)
	}
	if secret.Data.SessionToken == "" || secret.Data.SessionToken != secret.Data.SecurityToken {
		t.Fatal("session_token and security_token missing or different")
	}
	return secret.Data
}

func readCredsHTTP(t *testing.T, w *world, path string) stsCreds {
	t.Helper()
	s, err := w.vault.Client.Logical().Read(mount + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	if s == nil || s.LeaseID == "" || s.Renewable {
		t.Fatalf("no lease: %+v", s)
	}
	raw, _ := json.Marshal(s.Data)
	var c stsCreds
	_ = json.Unmarshal(raw, &c)
	return c
}

func TestPluginEndToEnd(t *testing.T) {
	if os.Getenv("VAULT_BIN") == "" && !testenv.InCI() {
		t.Skip("VAULT_BIN not set: run `make test`")
	}
	w := setup(t)
	for _, store := range []string{"transit", "pkcs11", "tpm", "tink"} {
		t.Run(store, func(t *testing.T) { w.runStore(t, store) })
	}
	t.Run("reload", w.runReload)
	t.Run("identity", w.runIdentity)
	t.Run("rotation", w.runRotation)
	t.Run("helper", w.runHelper)
	t.Run("containers", w.runContainers)
	t.Run("wrong-types", w.runWrongTypes)
	t.Run("allow-lists", w.runAllowLists)
	t.Run("scope", w.runScope)
	t.Run("attestation", w.runAttestation)
	t.Run("batch", w.runBatch)
	w.checkNothingLeaked(t)
}

func (w *world) runStore(t *testing.T, store string) {
	// Configure through the CLI: the secret goes into the store, proven against the STS peer.
	args := []string{"write", mount + "/config", "access_key=" + w.minio.AccessKey, "secret_key=" + w.minio.SecretKey,
		"key_store=" + store, "sts_endpoint=" + w.peer.URL, "region=us-east-1"}
	w.cli(t, append(args, w.storeFields(store)...)...)
	cfg, err := w.vault.Client.Logical().Read(mount + "/config")
	if err != nil || cfg.Data["key_store"] != store {
		t.Fatalf("config read: %v %v", err, cfg)
	}
	for _, f := range []string{"secret_key", "transit_token", "pkcs11_pin", "tpm_password", "tink_vault_token"} {
		if _, ok := cfg.Data[f]; ok {
			t.Fatalf("config read returned %s", f)
		}
	}

	w.cli(t, "write", mount+"/roles/session", "credential_type=session_token", "default_sts_ttl=30m")
	w.cli(t, "write", mount+"/roles/deploy", "credential_type=assumed_role", "role_arns="+roleARN, "max_sts_ttl=1h", "default_sts_ttl=15m")
	w.cli(t, "write", mount+"/roles/fed", "credential_type=federation_token", "policy_arns=arn:aws:iam::aws:policy/ReadOnlyAccess")
	w.cli(t, "write", mount+"/roles/signer", "credential_type=session_token", "sign_with=key",
		"allowed_services=sts,s3", "allowed_actions=sts:GetCallerIdentity,s3:*", "allowed_regions=us-east-1", "allowed_hosts=127.0.0.1")

	// Credentials of every type from the STS peer, through the CLI and the HTTP API.
	if got := w.peerIdentity(t, readCredsCLI(t, w, "creds/session")); got != "arn:aws:iam::123456789012:user/vault" {
		t.Fatalf("session_token credentials are %s", got)
	}
	deploy := readCredsHTTP(t, w, "creds/deploy")
	if got := w.peerIdentity(t, deploy); !strings.HasPrefix(got, "arn:aws:sts::123456789012:assumed-role/deploy/") || got != deploy.ARN {
		t.Fatalf("assumed_role credentials are %s (arn %s)", got, deploy.ARN)
	}
	if got := w.peerIdentity(t, readCredsHTTP(t, w, "creds/fed")); !strings.HasPrefix(got, "arn:aws:sts::123456789012:federated-user/") {
		t.Fatalf("federation_token credentials are %s", got)
	}

	w.storeSign(t)

	w.runAgent(t)

	w.storeMinIO(t)
	w.cli(t, "write", mount+"/config", "sts_endpoint="+w.peer.URL)
}

// storeSign: a GetCallerIdentity call signed by Vault, sent unchanged to
// the peer; a request outside the role's scope is refused with the reason.
func (w *world) storeSign(t *testing.T) {
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	signed, err := w.vault.Client.Logical().Write(mount+"/sign/signer", map[string]any{
		"method": "POST", "url": w.peer.URL + "/", "service": "sts", "body": base64.StdEncoding.EncodeToString([]byte(body)),
		"headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, signed.Data["url"].(string), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range signed.Data["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, "user/vault") {
		t.Fatalf("peer answered %d to the request Vault signed: %s", code, out)
	}
	// Outside the role's scope: refused with the reason.
	_, err = w.vault.Client.Logical().Write(mount+"/sign/signer", map[string]any{"url": "https://iam.amazonaws.com/", "service": "iam"})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || !strings.Contains(strings.Join(re.Errors, " "), "service") {
		t.Fatalf("out-of-scope signing: %v", err)
	}

}

// storeMinIO: MinIO standing in for AWS: AssumeRole, then S3 with the
// credentials and with requests Vault signs and presigns.
func (w *world) storeMinIO(t *testing.T) {
	// MinIO standing in for AWS: AssumeRole, then S3 with the credentials.
	// MinIO has no GetCallerIdentity, so this write skips verification.
	w.cli(t, "write", mount+"/config", "sts_endpoint="+w.minio.Endpoint, "skip_verification=true")
	minioCreds := readCredsCLI(t, w, "creds/deploy")
	if code, out := w.listBuckets(t, minioCreds); code != http.StatusOK || !strings.Contains(out, "<Name>"+w.minio.Bucket+"</Name>") {
		t.Fatalf("ListBuckets with MinIO credentials from Vault: %d %s", code, out)
	}
	for _, presign := range []bool{false, true} {
		s, err := w.vault.Client.Logical().Write(mount+"/sign/signer", map[string]any{"url": w.minio.Endpoint + "/" + w.minio.Bucket + "/?list-type=2", "service": "s3", "presign": presign})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, s.Data["url"].(string), nil)
		for k, v := range s.Data["headers"].(map[string]any) {
			req.Header.Set(k, v.(string))
		}
		if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, "ListBucketResult") {
			t.Fatalf("MinIO answered %d to the %v-presigned request Vault signed: %s", code, presign, out)
		}
	}
}

// runReload reloads the plugin, as Vault does on upgrades: the new process
// is initialised again and reopens the key from its stored reference.
func (w *world) runReload(t *testing.T) {
	before := w.pluginPIDs()
	if len(before) == 0 {
		t.Fatal("no plugin process before the reload")
	}
	w.cli(t, "plugin", "reload", "-plugin="+pluginName, "-scope=global")
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := w.vault.Client.Logical().Read(mount + "/creds/session")
		if err == nil && s != nil {
			raw, _ := json.Marshal(s.Data)
			var c stsCreds
			_ = json.Unmarshal(raw, &c)
			if got := w.peerIdentity(t, c); got != "arn:aws:iam::123456789012:user/vault" {
				t.Fatalf("after reload the credentials are %s", got)
			}
			after := w.pluginPIDs()
			for _, pid := range after {
				if slices.Contains(before, pid) {
					t.Fatalf("plugin process %s survived the reload", pid)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("creds after plugin reload: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pluginPIDs lists the running processes of the registered plugin binary.
func (w *world) pluginPIDs() []string { return w.pidsOf(pluginName) }

// pidsOf lists the running processes of the plugin registered as name.
func (w *world) pidsOf(name string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		arg0, _, _ := bytes.Cut(cmdline, []byte{0})
		if err == nil && string(arg0) == filepath.Join(w.vault.PluginDir, name) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// runAgent renders credentials with Vault Agent, in the formats apps use.
func (w *world) runAgent(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(w.vault.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile, procFile := filepath.Join(dir, "aws.env"), filepath.Join(dir, "credential_process.json")
	conf := fmt.Sprintf(`
vault { address = %q }
exit_after_auth = true
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
template {
  destination = %q
  contents    = <<EOT
{{ with secret "%s/creds/session" }}AWS_ACCESS_KEY_ID={{ .Data.access_key }}
AWS_SECRET_ACCESS_KEY={{ .Data.secret_key }}
AWS_SESSION_TOKEN={{ .Data.session_token }}
{{ end }}
EOT
}
template {
  destination = %q
  contents    = <<EOT
{{ with secret "%s/creds/deploy" }}{"Version": 1, "AccessKeyId": "{{ .Data.access_key }}", "SecretAccessKey": "{{ .Data.secret_key }}", "SessionToken": "{{ .Data.session_token }}", "Expiration": "{{ .Data.expiration }}"}{{ end }}
EOT
}
`, w.vault.Addr, tokenFile, envFile, mount, procFile, mount)
	confPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := w.tryCLI("agent", "-config="+confPath)
	if err != nil {
		t.Fatalf("vault agent: %v\n%s", err, redact(out, w))
	}

	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(env)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vals[k] = v
	}
	got := w.peerIdentity(t, stsCreds{AccessKey: vals["AWS_ACCESS_KEY_ID"], SecretKey: vals["AWS_SECRET_ACCESS_KEY"], SessionToken: vals["AWS_SESSION_TOKEN"]})
	if got != "arn:aws:iam::123456789012:user/vault" {
		t.Fatalf("agent-rendered credentials are %s", got)
	}

	raw, err := os.ReadFile(procFile)
	if err != nil {
		t.Fatal(err)
	}
	var proc struct {
		Version                                   int
		AccessKeyID                               string `json:"AccessKeyId"`
		SecretAccessKey, SessionToken, Expiration string
	}
	if err := json.Unmarshal(bytes.TrimSpace(raw), &proc); err != nil {
		t.Fatalf("credential_process output is not JSON: %v", err)
	}
	exp, err := time.Parse(time.RFC3339, proc.Expiration)
	if proc.Version != 1 || err != nil || time.Until(exp) <= 0 {
		t.Fatalf("credential_process: version %d expiration %q", proc.Version, proc.Expiration)
	}
	if got := w.peerIdentity(t, stsCreds{AccessKey: proc.AccessKeyID, SecretKey: proc.SecretAccessKey, SessionToken: proc.SessionToken}); !strings.Contains(got, "assumed-role/deploy") {
		t.Fatalf("credential_process credentials are %s", got)
	}
}

// checkNothingLeaked searches every storage file, the server's trace log
// and the audit log for the secret, K, kDate, derived keys, PINs and tokens.
func (w *world) checkNothingLeaked(t *testing.T) {
	t.Helper()
	var files []string
	_ = filepath.Walk(w.vault.StorageDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no storage files to search")
	}
	files = append(files, w.vault.Process.LogPath, w.vault.AuditPath)
	audit, _ := os.ReadFile(w.vault.AuditPath)
	if !bytes.Contains(audit, []byte(mount+"/creds/deploy")) {
		t.Fatal("the audit log did not record the plugin's requests")
	}
	log, _ := os.ReadFile(w.vault.Process.LogPath)
	if !bytes.Contains(log, []byte("[TRACE]")) {
		t.Fatal("the server log has no trace lines")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, form := range w.secretForms {
			if len(form) >= 8 && bytes.Contains(data, []byte(form)) {
				t.Errorf("%s contains secret material (form %d)", f, i)
			}
		}
	}
}
