package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// batchMount is a mount of its own: MinIO's user as the key, the STS peer
// (which knows that user too) for the config's verification.
const batchMount = "aws-hmac-batch"

const batchObjects = 100

// batchPoison marks the values of items that must be refused.
const batchPoison = "batch-poison-5d21a9"

// batchItem is one of batch_results.
type batchItem struct {
	Status  int               `json:"status"`
	Error   string            `json:"error"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// runBatch: 100 uploads signed in one call and sent to MinIO, 100
// presigned URLs from one call, each fetched and its contents checked; a
// mixed batch answered item by item as single calls are; the audit log
// with each item's URL and outcome; the helper's presign against the same.
func (w *world) runBatch(t *testing.T) {
	w.cli(t, "secrets", "enable", "-path="+batchMount, pluginName)
	w.cli(t, "write", batchMount+"/config", "access_key="+w.minio.AccessKey, "secret_key="+w.minio.SecretKey,
		"key_store=transit", "transit_address="+w.vault.Addr, "transit_token="+w.storeToken,
		"transit_key_name=aws-hmac-batch", "sts_endpoint="+w.peer.URL, "region=us-east-1")
	host := "allowed_hosts=" + strings.TrimPrefix(w.minio.Endpoint, "http://")
	paths := "allowed_paths=/" + w.minio.Bucket + "/batch/*"
	w.cli(t, "write", batchMount+"/roles/put", "allowed_services=s3", "allowed_regions=us-east-1", host, paths,
		"allowed_methods=PUT", "allowed_actions=s3:PutObject")
	w.cli(t, "write", batchMount+"/roles/get", "allowed_services=s3", "allowed_regions=us-east-1", host, paths,
		"allowed_methods=GET", "allowed_actions=s3:GetObject", "max_presign_expires=1h")
	contents := w.batchPut(t)
	urls := make([]string, batchObjects)
	for i := range urls {
		urls[i] = w.objectURL(fmt.Sprintf("batch/obj-%03d.txt", i))
	}
	presigned := w.batchPresign(t, urls, contents)
	w.batchAudited(t, presigned)
	w.batchMixed(t, urls[0])
	w.batchHelper(t, urls, contents)
	w.batchNothingQuoted(t)
}

// batchSign writes batch_input to sign/<role> and returns batch_results.
func (w *world) batchSign(t *testing.T, role string, items []map[string]any) []batchItem {
	t.Helper()
	code, out := w.putJSON(t, batchMount+"/sign/"+role, map[string]any{"batch_input": items})
	var resp struct {
		Data struct {
			Results []batchItem `json:"batch_results"`
		}
	}
	if err := json.Unmarshal([]byte(out), &resp); code != http.StatusOK || err != nil || len(resp.Data.Results) != len(items) {
		t.Fatalf("sign/%s with %d items: %d %.500s", role, len(items), code, out)
	}
	return resp.Data.Results
}

// batchPut uploads 100 small objects with PUTs signed in one call.
func (w *world) batchPut(t *testing.T) [][]byte {
	contents := make([][]byte, batchObjects)
	items := make([]map[string]any, batchObjects)
	for i := range items {
		tail := make([]byte, 8)
		_, _ = rand.Read(tail)
		contents[i] = []byte(fmt.Sprintf("object %d of the batch: %s\n", i, hex.EncodeToString(tail)))
		items[i] = map[string]any{"method": "PUT", "url": w.objectURL(fmt.Sprintf("batch/obj-%03d.txt", i)), "service": "s3",
			"body": base64.StdEncoding.EncodeToString(contents[i]), "headers": map[string]any{"Content-Type": "text/plain"}}
	}
	for i, r := range w.batchSign(t, "put", items) {
		if r.Status != http.StatusOK || r.Headers["Authorization"] == "" {
			t.Fatalf("PUT %d: %+v", i, r)
		}
		req, _ := http.NewRequest(http.MethodPut, r.URL, bytes.NewReader(contents[i]))
		req.Header.Set("Content-Type", "text/plain")
		for k, v := range r.Headers {
			req.Header.Set(k, v)
		}
		if code, out := send(t, req); code != http.StatusOK {
			t.Fatalf("MinIO answered PUT %d, signed in a batch, with %d: %s", i, code, out)
		}
	}
	return contents
}

// batchPresign presigns the URLs in one call and fetches every one.
func (w *world) batchPresign(t *testing.T, urls []string, contents [][]byte) []string {
	items := make([]map[string]any, len(urls))
	for i, u := range urls {
		items[i] = map[string]any{"url": u, "service": "s3", "presign": true, "expires": "15m"}
	}
	presigned := make([]string, len(urls))
	for i, r := range w.batchSign(t, "get", items) {
		if r.Status != http.StatusOK || !strings.Contains(r.URL, "X-Amz-Signature=") {
			t.Fatalf("presign %d: %+v", i, r)
		}
		presigned[i] = r.URL
	}
	w.fetchAll(t, presigned, contents)
	return presigned
}

// fetchAll fetches every presigned URL from MinIO and checks its contents.
func (w *world) fetchAll(t *testing.T, presigned []string, contents [][]byte) {
	t.Helper()
	for i, u := range presigned {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if code, out := send(t, req); code != http.StatusOK || out != string(contents[i]) {
			t.Fatalf("presigned URL %d: MinIO answered %d: %.300s", i+1, code, out)
		}
	}
}

// batchAudited: the audit log's entry for the presigning call shows each
// item's URL as Vault audits a string field (its HMAC, which
// sys/audit-hash reproduces) and its outcome as a number.
func (w *world) batchAudited(t *testing.T, presigned []string) {
	audit, err := os.ReadFile(w.vault.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Response struct {
			Data struct {
				Results []batchItem `json:"batch_results"`
			}
		}
	}
	for _, line := range bytes.Split(audit, []byte("\n")) {
		if bytes.Contains(line, []byte(`"type":"response"`)) && bytes.Contains(line, []byte(batchMount+"/sign/get")) {
			_ = json.Unmarshal(line, &entry)
		}
	}
	results := entry.Response.Data.Results
	if len(results) != len(presigned) {
		t.Fatalf("the audit log's last sign/get answer has %d items, not %d", len(results), len(presigned))
	}
	for _, i := range []int{0, len(presigned) / 2, len(presigned) - 1} {
		s, err := w.vault.Client.Logical().Write("sys/audit-hash/file", map[string]any{"input": presigned[i]})
		if err != nil {
			t.Fatal(err)
		}
		if r := results[i]; r.Status != http.StatusOK || r.URL != s.Data["hash"] {
			t.Fatalf("audited item %d: %+v, its URL's hash %v", i, r, s.Data["hash"])
		}
	}
}

// batchMixed: accepted, out-of-scope, malformed and over-size items in one
// call, each answered as the same request alone is answered; 1001 items
// refused whole with the limit named.
func (w *world) batchMixed(t *testing.T, accepted string) {
	items := []map[string]any{
		{"url": accepted, "service": "s3", "presign": true},
		{"url": w.minio.Endpoint + "/other-bucket/" + batchPoison, "service": "s3", "presign": true},
		{"url": accepted, "service": "s3", "presign": true, "region": "eu-" + batchPoison},
		{"url": accepted + "?" + strings.Repeat(batchPoison, 700), "service": "s3"},
		{"url": accepted, "service": "s3", "headers": map[string]any{"X-Amz-Meta-A": batchPoison + "\n"}},
	}
	for i, r := range w.batchSign(t, "get", items) {
		code, out := w.putJSON(t, batchMount+"/sign/get", items[i])
		if r.Status != code || (code != http.StatusOK && !strings.Contains(out, jsonText(r.Error))) {
			t.Errorf("item %d: the batch answered %d %q, alone %d %s", i, r.Status, r.Error, code, out)
		}
	}
	many := make([]map[string]any, 1001)
	for i := range many {
		many[i] = items[0]
	}
	code, out := w.putJSON(t, batchMount+"/sign/get", map[string]any{"batch_input": many})
	if code != http.StatusBadRequest || !strings.Contains(out, "batch_input: more than 1000 items") || strings.Contains(out, "batch_results") {
		t.Fatalf("1001 items: %d %.300s", code, out)
	}
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	raw, _ := json.Marshal(s)
	return strings.Trim(string(raw), `"`)
}

// batchHelper: aws-hmac presign prints the 100 URLs presigned in order,
// with an empty line for one outside the role's scope, named on stderr
// with its reason and a non-zero exit; the same from stdin.
func (w *world) batchHelper(t *testing.T, urls []string, contents [][]byte) {
	refused := w.minio.Endpoint + "/other-bucket/k"
	args := []string{"presign", "-role", "get", "-mount", batchMount, "-expires", "15m"}
	args = append(append(append(args, urls[:50]...), refused), urls[50:]...)
	cmd := exec.Command(helperBinary, args...)
	cmd.Env = w.helperEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); exitCode(err) != 1 {
		t.Fatalf("aws-hmac presign with a refused URL: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	wantErr := "aws-hmac: URL 51 (" + refused + "): Vault refused it: 403 url: the role may not sign this path"
	if len(lines) != len(urls)+1 || lines[50] != "" || !strings.HasPrefix(stderr.String(), wantErr) || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("%d lines, line 51 %q; stderr %q", len(lines), lines[50], stderr.String())
	}
	w.fetchAll(t, append(lines[:50:50], lines[51:]...), contents)

	cmd = exec.Command(helperBinary, "presign", "-role", "get", "-mount", batchMount)
	cmd.Env, cmd.Stdin = w.helperEnv(t), strings.NewReader(strings.Join(urls[:3], "\n")+"\n")
	out, err := cmd.Output()
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(got) != 3 {
		t.Fatalf("aws-hmac presign from stdin: %v %q", err, out)
	}
	w.fetchAll(t, got, contents)
}

// batchNothingQuoted: no refused item's value in the server log or, beyond
// its HMAC, the audit log.
func (w *world) batchNothingQuoted(t *testing.T) {
	for _, f := range []string{w.vault.Process.LogPath, w.vault.AuditPath} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(batchPoison)) {
			t.Errorf("%s quotes a refused item's value", f)
		}
	}
}
