package awshmac

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestSignScopeAndOutput(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	host := strings.TrimPrefix(e.peer.URL, "http://")
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key",
		"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "eu-west-3", "allowed_hosts": "127.0.0.1"})
	e.mustWrite(t, "roles/nothing", map[string]any{"credential_type": "session_token"})
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	good := map[string]any{"method": "POST", "url": e.peer.URL + "/", "service": "sts",
		"headers": map[string]any{"Content-Type": "application/x-www-form-urlencoded"}, "body": base64.StdEncoding.EncodeToString([]byte(body))}

	checkSignRefusals(t, e, good)

	// The signed request goes to the peer unchanged and is accepted.
	resp := e.mustWrite(t, "sign/signer", good)
	headers := resp.Data["headers"].(map[string]any)
	req, _ := http.NewRequest(http.MethodPost, resp.Data["url"].(string), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v.(string))
	}
	httpResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusOK {
		t.Fatalf("peer answered %d to the signed request", httpResp.StatusCode)
	}
	if resp.Data["signed_headers"] != "content-length;content-type;host;x-amz-date" {
		t.Fatalf("signed headers %v", resp.Data["signed_headers"])
	}
	_ = host

	// Presigned GetCallerIdentity works too.
	resp = e.mustWrite(t, "sign/signer", map[string]any{"url": e.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15", "service": "sts", "presign": true, "expires": "5m"})
	httpResp, err = http.Get(resp.Data["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusOK {
		t.Fatalf("peer answered %d to the presigned URL", httpResp.StatusCode)
	}
}

// headers also takes Name=value strings, repeated names included, as the
// vault CLI sends them; the signature is the one the map form gives.
func TestSignHeadersAsPairs(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"})
	body := base64.StdEncoding.EncodeToString([]byte("Action=GetCallerIdentity&Version=2011-06-15"))
	base := map[string]any{"method": "POST", "url": e.peer.URL + "/", "service": "sts", "body": body}
	pairs := e.mustWrite(t, "sign/signer", with(base, "headers", []any{"Content-Type=application/x-www-form-urlencoded", "X-Extra=a", "X-Extra=b"}))
	if got := pairs.Data["signed_headers"]; got != "content-length;content-type;host;x-amz-date;x-extra" {
		t.Fatalf("signed headers %v", got)
	}
	one := e.mustWrite(t, "sign/signer", with(base, "headers", "Content-Type=application/x-www-form-urlencoded"))
	req, _ := http.NewRequest(http.MethodPost, one.Data["url"].(string), strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range one.Data["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the peer answered %d to a request signed with Name=value headers", resp.StatusCode)
	}
	for _, bad := range []any{"no-equals-sign", []any{"A=1", 7}} {
		r, err := e.request(t, logical.UpdateOperation, "sign/signer", with(base, "headers", bad))
		if status(r, err) != http.StatusBadRequest || !strings.Contains(errText(r, err), "headers") {
			t.Fatalf("%v: %v %v", bad, r, err)
		}
	}
}

// A role's presign cap, seen in what is refused and in the URL that is
// given: X-Amz-Expires and expiration say the lifetime asked, at most the
// cap, and one second more is refused.
func TestPresignLifetimeCap(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/p", map[string]any{"allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*", "max_presign_expires": "1h"})
	req := map[string]any{"url": "https://bucket.s3.eu-west-3.amazonaws.com/k", "service": "s3", "presign": true}
	for _, tc := range []struct {
		expires int
		ok      bool
	}{{60, true}, {3600, true}, {3601, false}, {7 * 24 * 3600, false}} {
		before := time.Now()
		resp, err := e.request(t, logical.UpdateOperation, "sign/p", with(req, "expires", tc.expires))
		if !tc.ok {
			if status(resp, err) != http.StatusForbidden || !strings.Contains(errText(resp, err), "max_presign_expires") {
				t.Errorf("expires %d: %d %q, want 403", tc.expires, status(resp, err), errText(resp, err))
			}
			continue
		}
		if err != nil || resp.IsError() {
			t.Fatalf("expires %d: %v %v", tc.expires, err, resp)
		}
		u, _ := url.Parse(resp.Data["url"].(string))
		if got := u.Query().Get("X-Amz-Expires"); got != strconv.Itoa(tc.expires) {
			t.Errorf("expires %d: X-Amz-Expires=%s", tc.expires, got)
		}
		exp, _ := time.Parse(time.RFC3339, resp.Data["expiration"].(string))
		if want := before.Add(time.Duration(tc.expires) * time.Second); exp.Before(want.Add(-2*time.Second)) || exp.After(want.Add(2*time.Second)) {
			t.Errorf("expires %d: expiration %v, want about %v", tc.expires, exp, want)
		}
	}
}

// checkSignRefusals: out of scope is 403 naming the field, malformed input
// 400 naming it.
func checkSignRefusals(t *testing.T, e *testEnv, good map[string]any) {
	t.Helper()
	forbiddenCases := []struct {
		name, path string
		data       map[string]any
		wantField  string
	}{
		{"empty scope", "sign/nothing", good, "service"},
		{"other service", "sign/signer", with(good, "service", "s3"), "service"},
		{"other region", "sign/signer", with(good, "region", "us-east-1"), "region"},
		{"other host", "sign/signer", with(good, "url", "https://sts.amazonaws.com/"), "url"},
	}
	for _, tt := range forbiddenCases {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, tt.path, tt.data)
			if status(resp, err) != http.StatusForbidden || !strings.Contains(errText(resp, err), tt.wantField) {
				t.Fatalf("got %v %v, want 403 naming %s", err, resp, tt.wantField)
			}
		})
	}
	badCases := []struct {
		name      string
		data      map[string]any
		wantField string
	}{
		{"no url", with(good, "url", nil), "url"},
		{"relative url", with(good, "url", "/path"), "url"},
		{"no service", with(good, "service", nil), "service"},
		{"bad method", with(good, "method", "GE T"), "method"},
		{"bad region", with(good, "region", "moon"), "region"},
		{"body not base64", with(good, "body", "!!"), "body"},
		{"body and hash", with(good, "payload_hash", strings.Repeat("a", 64)), "payload_hash"},
		{"bad hash", with(good, "body", nil, "payload_hash", "xyz"), "payload_hash"},
		{"reserved header", with(good, "headers", map[string]any{"Authorization": "x"}), "headers"},
		{"bad header name", with(good, "headers", map[string]any{"bad header": "x"}), "headers"},
		{"expires without presign", with(good, "expires", "1h"), "expires"},
		{"expires too long", with(good, "presign", true, "expires", "8d"), "expires"},
	}
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, "sign/signer", tt.data)
			if err != nil || resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tt.wantField) {
				t.Fatalf("got %v %v, want a 400 naming %s", err, resp, tt.wantField)
			}
		})
	}

}
