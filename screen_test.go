package awshmac

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// The documented limits, written as numbers, not as the constants: a
// limit raised in the code fails here. Each is tried one below, at, and
// one above.
func TestDocumentedLimits(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	base := e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	sign := func(extra map[string]any) (*logical.Response, error) {
		return e.request(t, logical.UpdateOperation, "sign/signer", with(map[string]any{"url": base, "service": "sts"}, flatten(extra)...))
	}
	for _, tc := range []struct {
		name  string
		data  func(n int) map[string]any
		limit int
		field string
	}{
		{"header names", func(n int) map[string]any { return map[string]any{"headers": namedHeaders(n, 1)} }, 64, "headers"},
		{"one header value", func(n int) map[string]any {
			return map[string]any{"headers": map[string]any{"X-A": strings.Repeat("v", n)}}
		}, 8192, "headers"},
		{"headers in all", func(n int) map[string]any { return map[string]any{"headers": totalHeaders(n)} }, 65536, "headers"},
		{"url", func(n int) map[string]any {
			return map[string]any{"url": base + "&X=" + strings.Repeat("a", n-len(base)-3)}
		}, 8192, "url"},
		{"values of one header", func(n int) map[string]any { return map[string]any{"headers": map[string]any{"X-A": repeatAny("v", n)}} }, 64, "headers"},
	} {
		for _, n := range []int{tc.limit - 1, tc.limit, tc.limit + 1} {
			resp, err := sign(tc.data(n))
			code, text := status(resp, err), errText(resp, err)
			switch {
			case n <= tc.limit && code == http.StatusBadRequest && strings.Contains(text, fmt.Sprint(tc.limit)):
				t.Errorf("%s: %d refused by the limit: %s", tc.name, n, text)
			case n > tc.limit && (code != http.StatusBadRequest || !strings.HasPrefix(text, tc.field) || !strings.Contains(text, fmt.Sprint(tc.limit))):
				t.Errorf("%s: %d got %d %q, want 400 naming %s and %d", tc.name, n, code, text, tc.field, tc.limit)
			}
		}
	}
}

// Lists on roles: 64 items, and string fields 16 KiB.
func TestDocumentedFieldLimits(t *testing.T) {
	e := newTestEnv(t)
	for _, n := range []int{63, 64, 65} {
		resp, err := e.request(t, logical.UpdateOperation, "roles/r", map[string]any{"allowed_regions": repeatAny("eu-west-3", n)})
		if ok := err == nil && (resp == nil || !resp.IsError()); ok != (n <= 64) {
			t.Errorf("allowed_regions with %d items: %v %v", n, err, resp)
		}
		if n > 64 && !strings.Contains(errText(resp, err), "64") {
			t.Errorf("allowed_regions with %d items: %q does not name the limit", n, errText(resp, err))
		}
	}
	for _, n := range []int{16383, 16384, 16385} {
		resp, err := e.request(t, logical.UpdateOperation, "roles/r", map[string]any{"policy_document": strings.Repeat(" ", n)})
		text := errText(resp, err)
		over := strings.HasPrefix(text, "policy_document is longer than 16384")
		if over != (n > 16384) || (n > 16384 && status(resp, err) != http.StatusBadRequest) {
			t.Errorf("policy_document of %d bytes: %d %q", n, status(resp, err), text)
		}
	}
}

func namedHeaders(n, size int) map[string]any {
	h := map[string]any{}
	for i := range n {
		h[fmt.Sprintf("X-H%02d", i)] = strings.Repeat("v", size)
	}
	return h
}

// totalHeaders: sixteen headers of five-byte names whose names and values
// add up to n bytes.
func totalHeaders(n int) map[string]any {
	h := map[string]any{}
	for i := range 16 {
		size := n/16 - 5
		if i == 0 {
			size += n % 16
		}
		h[fmt.Sprintf("X-H%02d", i)] = strings.Repeat("v", size)
	}
	return h
}

func repeatAny(s string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func flatten(m map[string]any) []any {
	var out []any
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

// A misspelt field is a 400 naming it, on every path that writes, and
// nothing is written; a name that is not field-shaped is not quoted back.
func TestUnknownFieldsRefused(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token", "default_sts_ttl": "15m"})
	for _, tc := range []struct {
		path, want string
		data       map[string]any
	}{
		{"config", "sts_endpiont", map[string]any{"sts_endpiont": "https://sts.amazonaws.com"}},
		{"roles/r", "default_ttl", map[string]any{"default_ttl": "1h"}},
		{"roles/new", "allowed_host, default_ttl", map[string]any{"allowed_services": "s3", "allowed_host": "x", "default_ttl": "1h"}},
		{"sign/r", "urll", map[string]any{"urll": "https://s3.amazonaws.com/b/k", "service": "s3"}},
		{"creds/r", "tll", map[string]any{"tll": "1h"}},
		{"config/rotate-root", "force", map[string]any{"force": true}},
	} {
		resp, err := e.request(t, logical.UpdateOperation, tc.path, tc.data)
		if status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(errText(resp, err), tc.want+": no such field") {
			t.Errorf("%s %v: %d %q", tc.path, tc.data, status(resp, err), errText(resp, err))
		}
	}
	if resp, _ := e.request(t, logical.ReadOperation, "roles/new", nil); resp != nil && resp.Data != nil {
		t.Error("a refused write created the role")
	}
	if resp, _ := e.request(t, logical.ReadOperation, "roles/r", nil); resp.Data["default_sts_ttl"] != int64(900) {
		t.Errorf("a refused write changed the role: %v", resp.Data["default_sts_ttl"])
	}
	resp, err := e.request(t, logical.UpdateOperation, "roles/r", map[string]any{"x\n" + poison: "v"})
	if status(resp, err) != http.StatusBadRequest || strings.Contains(errText(resp, err), poison) {
		t.Errorf("a hostile field name: %d %q", status(resp, err), errText(resp, err))
	}
}
