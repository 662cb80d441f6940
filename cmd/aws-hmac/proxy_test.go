package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"
)

// fakeVault counts sign/ calls and signs each with a dummy Authorization;
// fakeUpstream records what reached the service.
type proxyFixture struct {
	mu       sync.Mutex
	vaultIn  []map[string]any
	upHeader []http.Header
	upBody   [][]byte
	proxy    *signProxy
}

func (f *proxyFixture) calls() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.vaultIn) }

func newProxyFixture(t *testing.T, service string) *proxyFixture {
	f := &proxyFixture{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.upHeader, f.upBody = append(f.upHeader, r.Header.Clone()), append(f.upBody, b)
		f.mu.Unlock()
	}))
	t.Cleanup(up.Close)
	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.vaultIn = append(f.vaultIn, in)
		f.mu.Unlock()
		headers := map[string]any{"Authorization": "AWS4-HMAC-SHA256 dummy"}
		if h, ok := in["payload_hash"].(string); ok {
			headers["X-Amz-Content-Sha256"] = h
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"url": in["url"], "headers": headers}})
	}))
	t.Cleanup(vault.Close)
	c, err := api.NewClient(&api.Config{Address: vault.URL, HttpClient: vault.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("vault-token")
	u, _ := url.Parse(up.URL)
	f.proxy = &signProxy{vault: c, flags: &vaultFlags{mount: "aws-hmac", role: "r"}, service: service, region: "us-east-1",
		upstream: u, client: up.Client(), hosts: proxyHosts(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}), token: "the-token"}
	return f
}

func proxyRequest(method, host string, body io.Reader, kv ...string) *http.Request {
	r := httptest.NewRequest(method, "http://"+host+"/bucket/key", body)
	r.Host = host
	for i := 0; i < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	return r
}

// Every refusal comes before any call to Vault; the token reaches neither
// Vault nor the service.
func TestProxyRefusesBeforeVault(t *testing.T) {
	f := newProxyFixture(t, "s3")
	tok := proxyTokenHeader
	for _, tc := range []struct {
		name string
		r    *http.Request
		want int
	}{
		{"another host", proxyRequest("GET", "evil.example:8080", nil, tok, "the-token"), http.StatusForbidden},
		{"another port", proxyRequest("GET", "127.0.0.1:9090", nil, tok, "the-token"), http.StatusForbidden},
		{"Origin", proxyRequest("GET", "127.0.0.1:8080", nil, tok, "the-token", "Origin", "https://evil.example"), http.StatusForbidden},
		{"Origin null", proxyRequest("GET", "localhost:8080", nil, tok, "the-token", "Origin", "null"), http.StatusForbidden},
		{"cross-site", proxyRequest("GET", "127.0.0.1:8080", nil, tok, "the-token", "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"no token", proxyRequest("GET", "127.0.0.1:8080", nil), http.StatusUnauthorized},
		{"wrong token", proxyRequest("GET", "127.0.0.1:8080", nil, tok, "the-tokeN"), http.StatusUnauthorized},
		{"signed chunks", proxyRequest("PUT", "127.0.0.1:8080", strings.NewReader("x"), tok, "the-token",
			"Content-Encoding", "aws-chunked", "X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), http.StatusBadRequest},
	} {
		w := httptest.NewRecorder()
		f.proxy.ServeHTTP(w, tc.r)
		if w.Code != tc.want || strings.Contains(w.Body.String(), "the-token") {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.want)
		}
	}
	if n := f.calls(); n != 0 {
		t.Fatalf("Vault was asked %d times for refused requests", n)
	}
	for _, host := range []string{"127.0.0.1:8080", "LOCALHOST:8080"} {
		w := httptest.NewRecorder()
		f.proxy.ServeHTTP(w, proxyRequest("GET", host, nil, tok, "the-token"))
		if w.Code != http.StatusOK {
			t.Fatalf("%s with the token: %d %s", host, w.Code, w.Body)
		}
	}
	if n := f.calls(); n != 2 {
		t.Fatalf("Vault was asked %d times, want 2", n)
	}
	vaultHeaders, _ := json.Marshal(f.vaultIn)
	if bytes.Contains(vaultHeaders, []byte("the-token")) || f.upHeader[0].Get(tok) != "" {
		t.Fatal("the proxy's token went on")
	}
}

// S3 bodies keep the client's payload mode and reach S3 byte for byte.
func TestProxyS3PayloadModes(t *testing.T) {
	f := newProxyFixture(t, "s3")
	f.proxy.token = ""
	hash := strings.Repeat("ab", 32)
	chunked := "5;chunk-signature=x\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
	for _, tc := range []struct {
		name, body, want string
		kv               []string
	}{
		{"no hash", "hello", unsignedPayload, nil},
		{"unsigned", "hello", unsignedPayload, []string{"X-Amz-Content-Sha256", unsignedPayload}},
		{"hex hash", "hello", hash, []string{"X-Amz-Content-Sha256", hash}},
		{"aws-chunked", chunked, streamingTrailer, []string{"Content-Encoding", "aws-chunked", "X-Amz-Trailer", "x-amz-checksum-crc32",
			"X-Amz-Decoded-Content-Length", "5", "X-Amz-Content-Sha256", streamingTrailer}},
		{"aws-chunked, no hash header", chunked, streamingTrailer, []string{"Content-Encoding", "aws-chunked", "X-Amz-Trailer", "x-amz-checksum-crc32",
			"X-Amz-Decoded-Content-Length", "5"}},
	} {
		n := f.calls()
		w := httptest.NewRecorder()
		f.proxy.ServeHTTP(w, proxyRequest("PUT", "127.0.0.1:8080", strings.NewReader(tc.body), tc.kv...))
		if w.Code != http.StatusOK || f.calls() != n+1 {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
		in, up, body := f.vaultIn[n], f.upHeader[n], string(f.upBody[n])
		if in["payload_hash"] != tc.want || up.Get("X-Amz-Content-Sha256") != tc.want || body != tc.body {
			t.Errorf("%s: Vault got %v, S3 got %q and %q", tc.name, in["payload_hash"], up.Get("X-Amz-Content-Sha256"), body)
		}
		if tc.want == streamingTrailer && (up.Get("Content-Encoding") != "aws-chunked" || up.Get("X-Amz-Decoded-Content-Length") != "5") {
			t.Errorf("%s: S3 got %v", tc.name, up)
		}
	}
}

// -listen unix: a socket of mode 0600 in a directory of mode 0700; a
// directory others can enter is refused.
func TestProxyUnixSocket(t *testing.T) {
	f := newProxyFixture(t, "s3")
	f.proxy.token = ""
	dir := filepath.Join(t.TempDir(), "run")
	sock := filepath.Join(dir, "s3.sock")
	l, _, err := f.proxy.listen("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if f.proxy.hosts != nil {
		t.Fatalf("hosts %v on a Unix socket", f.proxy.hosts)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, sock: 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want %o", path, fi.Mode(), err, want)
		}
	}
	go func() { _ = http.Serve(l, f.proxy) }()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := client.Get("http://s3.local/bucket/key")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("through the socket: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, _, err := f.proxy.listen("unix:" + sock); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second proxy on the socket: %v", err)
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.proxy.listen("unix:" + filepath.Join(open, "s.sock")); err == nil || !strings.Contains(err.Error(), "0700") {
		t.Fatalf("a socket in a 0755 directory: %v", err)
	}
}

// -token-file: a new token each run, mode 0600, replacing what was there.
func TestProxyTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := writeProxyToken(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if fi.Mode().Perm() != 0o600 || strings.TrimSpace(string(b)) != tok || len(tok) != 64 {
		t.Fatalf("token file mode %v, %d bytes", fi.Mode(), len(b))
	}
	if again, _ := writeProxyToken(path); again == tok {
		t.Fatal("the same token twice")
	}
}
