package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

const haMount = "aws-hmac-ha"

// haWorld is a three-node Raft cluster, one swtpm with an EK certificate
// per node, each node's plugin allowed only its own TPM (through the
// node's environment), the STS peer and MinIO.
type haWorld struct {
	cluster *testenv.RaftCluster
	ca      *testenv.EKCA
	tpms    []*testenv.SWTPM
	minio   *testenv.MinIO
	peer    *ststest.Server
	dir     string
	seen    bytes.Buffer // every answer and helper output, for the leak scan
	forms   []string
}

func TestTPMHA(t *testing.T) {
	if os.Getenv("VAULT_BIN") == "" && !testenv.InCI() {
		t.Skip("VAULT_BIN not set: run `make test`")
	}
	w := setupHA(t)
	targets := w.enrolAll(t)
	w.configure(t, haMount, targets, w.wrap(t, targets...))
	w.refusals(t, targets)

	first := w.cluster.Leader(t)
	w.serving(t, first, true)
	first.Kill()
	second := w.cluster.Leader(t)
	w.serving(t, second, true) // at once: nobody imports anything
	w.restart(t, first)

	rotated := w.api(t, second, http.MethodPut, haMount+"/config/rotate-root", nil)
	newKey, _ := rotated.Data["access_key"].(string)
	if newKey == "" || newKey == w.minio.AccessKey || w.peer.Secret(newKey) == "" {
		t.Fatalf("rotation answered %v", rotated.Data)
	}
	w.forms = append(w.forms, secretForms(w.peer.Secret(newKey))...) // the new secret must not leak either
	second.Kill()
	third := w.cluster.Leader(t)
	w.serving(t, third, false) // the new key is IAM's (the peer's) only: no MinIO
	w.restart(t, second)

	w.unenrolledNode(t)
	w.nothingLeaked(t)
}

func setupHA(t *testing.T) *haWorld {
	t.Helper()
	w := &haWorld{ca: testenv.NewEKCA(t), dir: t.TempDir()}
	for range 3 {
		w.tpms = append(w.tpms, testenv.StartSWTPMWithEK(t, w.ca))
	}
	w.minio = testenv.StartMinIO(t)
	w.peer = ststest.New()
	t.Cleanup(w.peer.Close)
	w.peer.AddUserKey("vault", w.minio.AccessKey, w.minio.SecretKey)
	w.forms = secretForms(w.minio.SecretKey)
	// Each node's own environment: only its TPM. The registration is the
	// cluster's: the EK CA.
	w.cluster = testenv.StartRaftCluster(t, 3, func(i int) []string {
		return []string{"AWS_HMAC_TPM_ADDRESSES=" + w.tpms[i].Addr, "AWS_HMAC_TPM_DEVICE=tcp://" + w.tpms[i].Addr}
	})
	w.cluster.RegisterPlugin(t, pluginBinary, pluginName, "AWS_HMAC_TPM_EK_CA="+w.ca.Root)
	w.cluster.EnableAudit(t)
	for _, m := range []string{haMount, haMount + "-refused"} {
		if err := w.cluster.Leader(t).Client.Sys().Mount(m, &api.MountInput{Type: pluginName}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// secretForms are the secret, K and the SigV4 keys derived from it for
// yesterday, today and tomorrow, in the encodings a leak would take.
func secretForms(secret string) []string {
	raw := []string{secret, "AWS4" + secret}
	now := time.Now().UTC()
	for _, day := range []time.Time{now.Add(-24 * time.Hour), now, now.Add(24 * time.Hour)} {
		kDate := mac([]byte("AWS4"+secret), day.Format("20060102"))
		kRegion := mac(kDate, "us-east-1")
		raw = append(raw, string(kDate), string(kRegion))
		for _, svc := range []string{"sts", "s3"} {
			kService := mac(kRegion, svc)
			raw = append(raw, string(kService), string(mac(kService, "aws4_request")))
		}
	}
	var out []string
	for _, f := range raw {
		out = append(out, f, hex.EncodeToString([]byte(f)), base64.StdEncoding.EncodeToString([]byte(f)),
			base64.RawStdEncoding.EncodeToString([]byte(f)), base64.URLEncoding.EncodeToString([]byte(f)))
	}
	return out
}

// enrolAll runs `aws-hmac tpm enroll` for each node's TPM, as its operator.
func (w *haWorld) enrolAll(t *testing.T) []string {
	t.Helper()
	var paths []string
	for i, sw := range w.tpms {
		out, err := exec.Command(helperBinary, "tpm", "enroll", "-device", "tcp://"+sw.Addr, "-chain", w.ca.Intermediate).Output()
		if err != nil {
			t.Fatalf("enroll node %d: %v", i, err)
		}
		p := filepath.Join(w.dir, "n"+strconv.Itoa(i)+".json")
		if err := os.WriteFile(p, out, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// wrap runs `aws-hmac tpm wrap` offline, typing the secret at a terminal.
func (w *haWorld) wrap(t *testing.T, targets ...string) string {
	t.Helper()
	out := filepath.Join(w.dir, "blobs-"+strconv.Itoa(len(targets))+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".json")
	args := []string{"tpm", "wrap", "-access-key", w.minio.AccessKey, "-ca", w.ca.Root, "-out", out}
	for _, tg := range targets {
		args = append(args, "-target", tg)
	}
	master, slave := testenv.PTY(t)
	cmd := exec.Command(helperBinary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no network, no TPM, no Vault
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := master.WriteString(w.minio.SecretKey + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wrap: %v %s", err, stderr.String())
	}
	w.seen.Write(stdout.Bytes())
	w.seen.Write(stderr.Bytes())
	return out
}

// jsonArray reads enrolment files into one JSON array, as jq -s does.
func jsonArray(t *testing.T, paths ...string) string {
	t.Helper()
	var items []json.RawMessage
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, json.RawMessage(data))
	}
	out, _ := json.Marshal(items)
	return string(out)
}

// configure writes a mount's config with the targets and blobs, no secret,
// and its roles.
func (w *haWorld) configure(t *testing.T, m string, targets []string, blobs string) {
	t.Helper()
	blobJSON, err := os.ReadFile(blobs)
	if err != nil {
		t.Fatal(err)
	}
	leader := w.cluster.Leader(t)
	w.api(t, leader, http.MethodPut, m+"/config", map[string]any{
		"access_key": w.minio.AccessKey, "key_store": "tpm", "tpm_mode": "duplicate",
		"tpm_targets": jsonArray(t, targets...), "tpm_blobs": string(blobJSON),
		"sts_endpoint": w.peer.URL, "iam_endpoint": w.peer.URL, "region": "us-east-1",
	})
	w.api(t, leader, http.MethodPut, m+"/roles/session", map[string]any{"credential_type": "session_token"})
	w.api(t, leader, http.MethodPut, m+"/roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key",
		"allowed_services": "sts,s3", "allowed_actions": "sts:GetCallerIdentity,s3:*", "allowed_regions": "us-east-1", "allowed_hosts": "127.0.0.1"})
}

// api sends a request to node n and fails the test on an error.
func (w *haWorld) api(t *testing.T, n *testenv.RaftNode, method, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := w.try(n, method, path, data)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.ID, err)
	}
	return s
}

func (w *haWorld) try(n *testenv.RaftNode, method, path string, data map[string]any) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var s *api.Secret
	var err error
	if method == http.MethodGet {
		s, err = n.Client.Logical().ReadWithContext(ctx, path)
	} else {
		s, err = n.Client.Logical().WriteWithContext(ctx, path, data)
	}
	if s != nil {
		raw, _ := json.Marshal(s)
		w.seen.Write(raw)
	}
	if err != nil {
		w.seen.WriteString(err.Error())
	}
	return s, err
}

// serving: the active node signs a GetCallerIdentity the peer accepts,
// mints credentials the peer accepts, and (before rotation) signs an S3
// request MinIO accepts; a standby forwards the same.
func (w *haWorld) serving(t *testing.T, active *testenv.RaftNode, withMinIO bool) {
	t.Helper()
	for _, n := range w.cluster.Nodes {
		if n.Process.Exited() {
			continue
		}
		w.signSTS(t, n)
		creds := w.api(t, n, http.MethodGet, haMount+"/creds/session", nil)
		if code, out := w.peerCall(t, creds.Data); code != http.StatusOK || !strings.Contains(out, "user/vault") {
			t.Fatalf("credentials minted through %s (active %s): %d %s", n.ID, active.ID, code, out)
		}
		if withMinIO {
			w.signMinIO(t, n)
		}
	}
	st := w.api(t, active, http.MethodGet, haMount+"/config/tpm-node", nil)
	if st.Data["blob_loads"] != true || st.Data["tpm_device"] != "tcp://"+w.tpms[nodeIndex(active)].Addr {
		t.Fatalf("config/tpm-node on %s: %v", active.ID, st.Data)
	}
}

func nodeIndex(n *testenv.RaftNode) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(n.ID, "node"))
	return i
}

func (w *haWorld) signSTS(t *testing.T, n *testenv.RaftNode) {
	t.Helper()
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	signed := w.api(t, n, http.MethodPut, haMount+"/sign/signer", map[string]any{
		"method": "POST", "url": w.peer.URL + "/", "service": "sts", "body": base64.StdEncoding.EncodeToString([]byte(body)),
		"headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"},
	})
	req, _ := http.NewRequest(http.MethodPost, signed.Data["url"].(string), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range signed.Data["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, "user/vault") {
		t.Fatalf("the peer answered %d to the request %s had signed: %s", code, n.ID, out)
	}
}

func (w *haWorld) signMinIO(t *testing.T, n *testenv.RaftNode) {
	t.Helper()
	s := w.api(t, n, http.MethodPut, haMount+"/sign/signer", map[string]any{"url": w.minio.Endpoint + "/" + w.minio.Bucket + "/?list-type=2", "service": "s3"})
	req, _ := http.NewRequest(http.MethodGet, s.Data["url"].(string), nil)
	for k, v := range s.Data["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, "ListBucketResult") {
		t.Fatalf("MinIO answered %d to the request %s signed: %s", code, n.ID, out)
	}
}

// peerCall calls GetCallerIdentity at the peer with minted credentials.
func (w *haWorld) peerCall(t *testing.T, data map[string]any) (int, string) {
	t.Helper()
	c := stsCreds{}
	raw, _ := json.Marshal(data)
	_ = json.Unmarshal(raw, &c)
	return sendSTS(t, w.peer.URL, c)
}

func (w *haWorld) restart(t *testing.T, n *testenv.RaftNode) {
	t.Helper()
	n.Start()
	n.Unseal(w.cluster.UnsealKey)
	w.cluster.WaitHealthy(t, 3)
}

// refusals: a target from another CA, an SRK whose Name the registration
// does not list, and a certified target with a PCR of 2^64-1 (which
// crashed the plugin in go-tpm) are 400s naming tpm_targets; the plugin
// still serves afterwards.
func (w *haWorld) refusals(t *testing.T, targets []string) {
	t.Helper()
	otherCA := testenv.NewEKCA(t)
	stranger := testenv.StartSWTPMWithEK(t, otherCA)
	dir := t.TempDir()
	enrol := func(name string, args ...string) string {
		out, err := exec.Command(helperBinary, append([]string{"tpm", "enroll"}, args...)...).Output()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, out, 0o600)
		return p
	}
	leader := w.cluster.Leader(t)
	for name, bad := range map[string]string{
		"another CA": enrol("foreign.json", "-device", "tcp://"+stranger.Addr, "-chain", otherCA.Intermediate),
		"SRK":        enrol("srk.json", "-device", "tcp://"+w.tpms[nodeIndex(leader)].Addr, "-parent", "srk-ecc-p256"),
		"huge PCR":   hugePCR(t, targets[0], dir),
	} {
		_, err := w.try(leader, http.MethodPut, haMount+"-refused/config", map[string]any{
			"access_key": w.minio.AccessKey, "secret_key": w.minio.SecretKey, "key_store": "tpm", "tpm_mode": "duplicate",
			"tpm_targets": jsonArray(t, targets[0], bad), "sts_endpoint": w.peer.URL,
		})
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || !strings.Contains(strings.Join(re.Errors, " "), "tpm_targets[1]") {
			t.Fatalf("%s target: %v", name, err)
		}
	}
}

// hugePCR is a certified enrolment with "pcrs":[2^64-1]: the PCRs are not
// covered by the EK certificate.
func hugePCR(t *testing.T, target, dir string) string {
	t.Helper()
	data, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	fields["pcrs"] = json.RawMessage("[18446744073709551615]")
	fields["pcr_digest"], _ = json.Marshal(make([]byte, 32))
	out, _ := json.Marshal(fields)
	p := filepath.Join(dir, "huge-pcr.json")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sendSTS(t *testing.T, endpoint string, c stsCreds) (int, string) {
	t.Helper()
	client := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken)})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		return 0, err.Error()
	}
	return http.StatusOK, aws.ToString(out.Arn)
}

// unenrolledNode replaces the active node's TPM (another TPM at the same
// address, certified by the same CA) and reloads its plugin: the node now
// has no blob, answers 503 saying so and logs its new Name; config/tpm-node
// says it is no target.
func (w *haWorld) unenrolledNode(t *testing.T) {
	t.Helper()
	active := w.cluster.Leader(t)
	w.tpms[nodeIndex(active)].Replace(w.ca)
	if _, err := active.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Plugin: pluginName}); err != nil {
		t.Fatalf("plugin reload on %s: %v", active.ID, err)
	}
	_, err := w.try(active, http.MethodPut, haMount+"/sign/signer", map[string]any{"url": w.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts"})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable || !strings.Contains(strings.Join(re.Errors, " "), "this node's TPM is not enrolled") {
		t.Fatalf("sign on the node whose TPM was replaced: %v", err)
	}
	st := w.api(t, active, http.MethodGet, haMount+"/config/tpm-node", nil)
	if n, _ := st.Data["target"].(json.Number).Int64(); n != -1 || st.Data["blob_loads"] != false {
		t.Fatalf("config/tpm-node on the node whose TPM was replaced: %v", st.Data)
	}
	log, _ := os.ReadFile(active.LogPath())
	if !bytes.Contains(log, []byte("this node's TPM is not enrolled: no blob for its parent ek-rsa-2048=")) {
		t.Fatalf("%s's log does not name its parent", active.ID)
	}
}

// nothingLeaked searches every node's storage and log, the audit log,
// the helper's files and output and every answer for the secret.
func (w *haWorld) nothingLeaked(t *testing.T) {
	t.Helper()
	files := []string{w.cluster.AuditPath}
	for _, n := range w.cluster.Nodes {
		files = append(files, n.LogPath())
		_ = filepath.Walk(n.StorageDir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				files = append(files, p)
			}
			return nil
		})
	}
	entries, _ := os.ReadDir(w.dir)
	for _, e := range entries {
		files = append(files, filepath.Join(w.dir, e.Name()))
	}
	audit, _ := os.ReadFile(w.cluster.AuditPath)
	if !bytes.Contains(audit, []byte(haMount+"/sign/signer")) {
		t.Fatal("the audit log did not record the plugin's requests")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w.noSecretIn(t, f, data)
	}
	w.noSecretIn(t, "the answers", w.seen.Bytes())
}

func (w *haWorld) noSecretIn(t *testing.T, where string, data []byte) {
	t.Helper()
	for i, form := range w.forms {
		if bytes.Contains(data, []byte(form)) {
			t.Errorf("%s contains secret material (form %d)", where, i)
		}
	}
}
