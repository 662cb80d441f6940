package awshmac

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

// FuzzSignInput throws arbitrary input at sign/: never a panic, never a
// 500, never a secret form in the answer, and oversized input refused
// before any work.
func FuzzSignInput(f *testing.F) {
	f.Add("GET", "http://127.0.0.1:9/", "sts", "eu-west-3", "X-A", "v", []byte("Action=GetCallerIdentity"), false, "")
	f.Add("POST", "http://127.0.0.1:9/?Action=AssumeRole&RoleArn=x", "sts", "", "Content-Type", "application/x-www-form-urlencoded", []byte{}, true, "5m")
	f.Add("PUT", "http://127.0.0.1:9/b/k%2F..%2F/x", "s3", "eu-west-3", "x-amz-copy-source", "/other/payroll.csv", []byte("data"), false, "")
	f.Add("G\nET", "http://user@127.0.0.1:9/#f", "*", "us-east-1", "Host", "evil", []byte{0, 1}, true, "8d")
	f.Add("GET", "http://127.0.0.1:9/"+strings.Repeat("a", 9000), "sts", "eu-west-3", "X-B", strings.Repeat("v", 9000), []byte(nil), false, "-1")
	e := newTestEnv(&testing.T{})
	e.configure(&testing.T{})
	e.mustWrite(&testing.T{}, "roles/signer", map[string]any{"credential_type": "session_token", "allowed_services": "sts,s3", "allowed_actions": "sts:GetCallerIdentity,s3:*", "allowed_regions": "*", "allowed_hosts": "127.0.0.1"})
	f.Fuzz(func(t *testing.T, method, url, service, region, hname, hvalue string, body []byte, presign bool, expires string) {
		data := map[string]any{"method": method, "url": url, "service": service, "headers": map[string]any{hname: hvalue},
			"body": base64.StdEncoding.EncodeToString(body), "presign": presign}
		if region != "" {
			data["region"] = region
		}
		if expires != "" {
			data["expires"] = expires
		}
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "sign/signer", Data: data, Storage: e.storage})
		code := status(resp, err)
		switch code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("status %d: %v %v", code, resp, err)
		}
		if (len(url) > maxURLLength || len(hvalue) > maxHeaderValue) && code != http.StatusBadRequest {
			t.Fatalf("oversized input answered %d", code)
		}
		if resp != nil {
			answer := []byte(fmtResponse(resp))
			keytest.NoSecretIn(t, "sign/ answer", answer)
			for _, form := range kDateForms {
				if bytes.Contains(answer, form) {
					t.Fatal("sign/ answer holds today's kDate")
				}
			}
		}
	})
}

// kDateForms is today's kDate of the test secret, raw, hex and base64.
var kDateForms = func() [][]byte {
	m := hmac.New(sha256.New, []byte("AWS4"+keytest.Secret))
	m.Write([]byte(time.Now().UTC().Format("20060102")))
	k := m.Sum(nil)
	return [][]byte{k, []byte(hex.EncodeToString(k)), []byte(base64.StdEncoding.EncodeToString(k))}
}()

func fmtResponse(resp *logical.Response) string {
	var b strings.Builder
	for k, v := range resp.Data {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := v.(string); ok {
			b.WriteString(s)
		} else if m, ok := v.(map[string]any); ok {
			for hk, hv := range m {
				b.WriteString(hk + ":" + hv.(string) + ";")
			}
		}
	}
	for _, w := range resp.Warnings {
		b.WriteString(w)
	}
	return b.String()
}
