package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeSign answers sign/'s batch_input as the engine does: a URL with
// "deny" in it gets a 403, any other its presigned form.
func fakeSign(t *testing.T, calls *atomic.Int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var in struct {
			BatchInput []map[string]any `json:"batch_input"`
		}
		if r.URL.Path != "/v1/aws-hmac/sign/reader" || json.NewDecoder(r.Body).Decode(&in) != nil || len(in.BatchInput) > 1000 {
			http.Error(w, `{"errors":["bad request"]}`, http.StatusBadRequest)
			return
		}
		var results []map[string]any
		for _, item := range in.BatchInput {
			u := item["url"].(string)
			if item["presign"] != true || item["expires"] != float64(3600) || item["service"] != "s3" {
				t.Errorf("item %v", item)
			}
			if strings.Contains(u, "deny") {
				results = append(results, map[string]any{"status": 403, "error": "url: the role may not sign this path"})
				continue
			}
			results = append(results, map[string]any{"status": 200, "url": u + "?X-Amz-Signature=abc", "headers": map[string]any{}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"batch_results": results}})
	}))
}

// presign prints one line per URL in order, empty where refused, names
// the refused ones on stderr and exits 1; 1,500 URLs take two calls.
func TestPresignManyOutput(t *testing.T) {
	var calls atomic.Int64
	srv := fakeSign(t, &calls)
	defer srv.Close()
	t.Setenv("VAULT_TOKEN", "t")
	urls := make([]string, 1500)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://b.s3.amazonaws.com/k%d", i)
	}
	urls[7] = "https://b.s3.amazonaws.com/deny/7"
	var stdout, stderr bytes.Buffer
	args := append([]string{"-address", srv.URL, "-role", "reader", "-expires", "1h"}, urls...)
	if code := run(append([]string{"presign"}, args...), &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d with a refused URL; stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != len(urls) || calls.Load() != 2 {
		t.Fatalf("%d lines for %d URLs in %d calls", len(lines), len(urls), calls.Load())
	}
	for i, l := range lines {
		want := urls[i] + "?X-Amz-Signature=abc"
		if i == 7 {
			want = ""
		}
		if l != want {
			t.Fatalf("line %d: %q, want %q", i+1, l, want)
		}
	}
	if got := stderr.String(); got != "aws-hmac: URL 8 ("+urls[7]+"): Vault refused it: 403 url: the role may not sign this path\n" {
		t.Fatalf("stderr: %q", got)
	}
}

func TestPresignURLsFromStdin(t *testing.T) {
	urls, err := presignURLs(nil, strings.NewReader("https://a/1\n\n  https://a/2  \n"))
	if err != nil || len(urls) != 2 || urls[1] != "https://a/2" {
		t.Fatalf("%q %v", urls, err)
	}
	if _, err := presignURLs(nil, strings.NewReader("\n")); err == nil {
		t.Fatal("no URLs accepted")
	}
}
