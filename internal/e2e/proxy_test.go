package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const proxyMount = "aws-hmac-proxy"

// uploadSizes: empty, one byte, and 5 MiB, the smallest multipart part.
var uploadSizes = []int{0, 1, 5 << 20}

// runProxy uploads through aws-hmac proxy over TLS, where clients send
// aws-chunked bodies with a trailing checksum: the AWS CLI v2 through the
// Unix socket, aws-sdk-go-v2 through loopback with the proxy's token. A
// test TLS terminator stands in front of each proxy; every object is read
// back from MinIO directly, byte for byte.
func (w *world) runProxy(t *testing.T) {
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skip("awscli not installed: run make deps")
	}
	w.cli(t, "secrets", "enable", "-path="+proxyMount, pluginName)
	w.cli(t, "write", proxyMount+"/config", "access_key="+w.minio.AccessKey, "secret_key="+w.minio.SecretKey,
		"key_store=transit", "transit_address="+w.vault.Addr, "transit_token="+w.storeToken,
		"transit_key_name=aws-hmac-proxy-uploads", "region=us-east-1", "skip_verification=true")
	w.cli(t, "write", proxyMount+"/roles/up", "allowed_services=s3", "allowed_regions=us-east-1", "allowed_hosts=127.0.0.1",
		"allowed_actions=s3:PutObject,s3:CreateMultipartUpload,s3:UploadPart,s3:CompleteMultipartUpload",
		"allowed_paths=/"+w.minio.Bucket+"/up/*")
	dir := filepath.Join(t.TempDir(), "run")
	sock := filepath.Join(dir, "s3.sock")
	w.startProxy(t, "unix:"+sock)
	cli := newTerminator(t, "unix", sock)
	w.proxyCLIUploads(t, cli)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	tokenFile := filepath.Join(t.TempDir(), "token")
	w.startProxy(t, addr, "-token-file", tokenFile)
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	w.secretForms = append(w.secretForms, token) // never in Vault's storage or logs
	w.proxyRefusals(t, addr, token)
	w.proxyHashedBody(t, addr, token)
	sdk := newTerminator(t, "tcp", addr)
	w.proxySDKUploads(t, sdk, token)
	for name, tm := range map[string]*terminator{"aws cli": cli, "aws-sdk-go-v2": sdk} {
		if n := tm.chunked(); n < 3 { // 1 byte, 5 MiB, each part
			t.Errorf("%s sent %d aws-chunked uploads with a trailer, want 3 or more", name, n)
		}
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProxy runs aws-hmac proxy for role up until the test ends.
func (w *world) startProxy(t *testing.T, listen string, args ...string) {
	cmd := exec.Command(helperBinary, append([]string{"proxy", "-role", "up", "-mount", proxyMount, "-listen", listen,
		"-upstream", w.minio.Endpoint}, args...)...)
	cmd.Env = w.helperEnv(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	network, address := "tcp", listen
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		network, address = "unix", path
	}
	w.eventually(t, "proxy on "+listen, func() bool {
		c, err := net.Dial(network, address)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// terminator is a test TLS front for a proxy: it passes each request on
// unchanged but for Host, and counts the aws-chunked uploads.
type terminator struct {
	*httptest.Server
	caFile string
	mu     sync.Mutex
	chunks int
}

func (tm *terminator) chunked() int { tm.mu.Lock(); defer tm.mu.Unlock(); return tm.chunks }

func newTerminator(t *testing.T, network, address string) *terminator {
	tm := &terminator{}
	target := &url.URL{Scheme: "http", Host: address}
	if network == "unix" {
		target.Host = "localhost"
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}}
	tm.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") && r.Header.Get("X-Amz-Trailer") != "" {
			tm.mu.Lock()
			tm.chunks++
			tm.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(tm.Close)
	tm.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tm.Certificate().Raw})
	if err := os.WriteFile(tm.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return tm
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// proxyCLIUploads: the AWS CLI v2 asks for a CRC32 checksum, which over
// TLS it sends as a trailer of an aws-chunked body.
func (w *world) proxyCLIUploads(t *testing.T, tm *terminator) {
	env := w.helperEnv(t, "AWS_CA_BUNDLE="+tm.caFile)
	s3api := func(args ...string) string {
		out, err := runCmd(t, env, awsCLI, append([]string{"--endpoint-url", tm.URL, "--no-sign-request", "--output", "json", "s3api"}, args...)...)
		if err != nil {
			t.Fatalf("aws s3api %s through the proxy: %v\n%s", args[0], err, out)
		}
		return out
	}
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	b := w.minio.Bucket
	for _, n := range uploadSizes {
		data, key := randomBytes(t, n), "up/cli-"+strconv.Itoa(n)
		s3api("put-object", "--bucket", b, "--key", key, "--body", file(key[3:], data), "--checksum-algorithm", "CRC32")
		w.readBack(t, key, data)
	}
	key := "up/cli-multipart"
	var created struct{ UploadId string }
	_ = json.Unmarshal([]byte(s3api("create-multipart-upload", "--bucket", b, "--key", key, "--checksum-algorithm", "CRC32")), &created)
	type part struct {
		ETag, ChecksumCRC32 string
		PartNumber          int
	}
	var done struct{ Parts []part }
	parts := [][]byte{randomBytes(t, 5<<20), randomBytes(t, 1<<20+3)}
	for i, data := range parts {
		var p part
		out := s3api("upload-part", "--bucket", b, "--key", key, "--upload-id", created.UploadId, "--part-number", strconv.Itoa(i+1),
			"--body", file("part"+strconv.Itoa(i), data), "--checksum-algorithm", "CRC32")
		_ = json.Unmarshal([]byte(out), &p)
		p.PartNumber = i + 1
		done.Parts = append(done.Parts, p)
	}
	spec, _ := json.Marshal(done)
	s3api("complete-multipart-upload", "--bucket", b, "--key", key, "--upload-id", created.UploadId, "--multipart-upload", string(spec))
	w.readBack(t, key, bytes.Join(parts, nil))
}

// proxySDKUploads: aws-sdk-go-v2, anonymous, sends the proxy's token and,
// over TLS, a CRC32 as a trailer (anonymous, it adds none unasked).
func (w *world) proxySDKUploads(t *testing.T, tm *terminator, token string) {
	ctx, b := context.Background(), aws.String(w.minio.Bucket)
	client := s3.New(s3.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, HTTPClient: tm.Client(),
		BaseEndpoint: aws.String(tm.URL), UsePathStyle: true,
		APIOptions: []func(*middleware.Stack) error{smithyhttp.AddHeaderValue("X-Aws-Hmac-Proxy-Token", token)}})
	for _, n := range uploadSizes {
		data, key := randomBytes(t, n), "up/sdk-"+strconv.Itoa(n)
		in := &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}
		if _, err := client.PutObject(ctx, in); err != nil {
			t.Fatalf("PutObject of %d bytes through the proxy: %v", n, err)
		}
		w.readBack(t, key, data)
	}
	key := aws.String("up/sdk-multipart")
	created, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatalf("CreateMultipartUpload through the proxy: %v", err)
	}
	parts := [][]byte{randomBytes(t, 5<<20), randomBytes(t, 1<<20+3)}
	var done []types.CompletedPart
	for i, data := range parts {
		n := aws.Int32(int32(i + 1))
		out, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: created.UploadId, PartNumber: n,
			Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatalf("UploadPart %d through the proxy: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32, PartNumber: n})
	}
	if _, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload through the proxy: %v", err)
	}
	w.readBack(t, *key, bytes.Join(parts, nil))
}

// readBack reads an object from MinIO itself, not through the proxy.
func (w *world) readBack(t *testing.T, key string, want []byte) {
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(w.minio.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(w.minio.AccessKey, w.minio.SecretKey, "")})
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(w.minio.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read back %s: %v", key, err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: read back %d bytes (%v), uploaded %d, not the same", key, len(got), err, len(want))
	}
}

// proxyRefusals: what the proxy refuses never reaches Vault — its audit
// log has no sign/ call for it — while a request it passes does.
func (w *world) proxyRefusals(t *testing.T, addr, token string) {
	calls := func() int {
		b, _ := os.ReadFile(w.vault.AuditPath)
		return bytes.Count(b, []byte(`"`+proxyMount+`/sign/up"`))
	}
	before := calls()
	u := "http://" + addr + "/" + w.minio.Bucket + "/up/x"
	for name, tc := range map[string]struct {
		host, header, value string
		want                int
	}{
		"another host":  {"rebound.example:" + strings.Split(addr, ":")[1], "", "", http.StatusForbidden},
		"Origin":        {"", "Origin", "https://evil.example", http.StatusForbidden},
		"cross-site":    {"", "Sec-Fetch-Site", "cross-site", http.StatusForbidden},
		"without token": {"", "", "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		if code, _ := send(t, req); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	if n := calls(); n != before {
		t.Fatalf("refused requests reached Vault: %d audit entries for sign/up", n-before)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Aws-Hmac-Proxy-Token", token)
	if code, _ := send(t, req); code != http.StatusForbidden || calls() == before {
		t.Fatalf("GetObject, outside the role, with the token: %d and no sign/ call in the audit log", code)
	}
}

// proxyHashedBody: a body sent with its own hex SHA-256 keeps it, and S3
// checks it: the right hash stores the object, a wrong one is refused.
func (w *world) proxyHashedBody(t *testing.T, addr, token string) {
	body := randomBytes(t, 1000)
	sum := sha256.Sum256(body)
	for _, tc := range []struct {
		hash string
		want int
	}{{hex.EncodeToString(sum[:]), http.StatusOK}, {strings.Repeat("0", 64), http.StatusBadRequest}} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/"+w.minio.Bucket+"/up/hashed", bytes.NewReader(body))
		req.Header.Set("X-Aws-Hmac-Proxy-Token", token)
		req.Header.Set("X-Amz-Content-Sha256", tc.hash)
		req.Header.Set("Content-Type", "application/octet-stream") // signed with a signed body
		if code, answer := send(t, req); code != tc.want {
			t.Fatalf("PUT with x-amz-content-sha256 through the proxy: %d, want %d: %s", code, tc.want, answer)
		}
	}
	w.readBack(t, "up/hashed", body)
}
