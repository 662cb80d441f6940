package awshmac

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
)

// hostileCase is one request an attacker might send, and the safe answer.
type hostileCase struct {
	name   string
	op     logical.Operation
	path   string
	data   map[string]any
	status int    // 400 or 403
	field  string // the field or reason the answer names
	value  string // what the answer must not quote; "" for nothing
}

const poison = "p0ison-9c1e"

// hostileCases covers every path: scope tricks, oversized and malformed
// input, wrong types, and injection into every field that reaches STS or
// a key store.
func hostileCases(e *testEnv) []hostileCase {
	var cases []hostileCase
	add := func(c hostileCase) {
		if c.op == "" {
			c.op = logical.UpdateOperation
		}
		cases = append(cases, c)
	}
	cases = append(cases, configHostile(e)...)
	for _, c := range roleHostile() {
		add(c)
	}
	for _, c := range credsHostile() {
		add(c)
	}
	for _, c := range signHostile(e) {
		add(c)
	}
	return cases
}

func configHostile(e *testEnv) []hostileCase {
	var cases []hostileCase
	for _, field := range writeOnlyFields() {
		for _, v := range []any{[]any{poison}, map[string]any{"k": poison}, []any{[]any{poison}}, 424242424242, true} {
			cases = append(cases, hostileCase{fmt.Sprintf("config %s as %T", field, v), logical.UpdateOperation, "config",
				with(e.baseConfig(), field, v), 400, field, poison})
		}
	}
	long := strings.Repeat("a", maxFieldLength+1)
	for _, field := range []string{"access_key", "region", "sts_endpoint", "iam_endpoint", "transit_address", "pkcs11_module", "tpm_device", "tink_kek_uri"} {
		cases = append(cases, hostileCase{"config oversized " + field, logical.UpdateOperation, "config", with(e.baseConfig(), field, long), 400, field, ""})
	}
	for _, tc := range []struct{ field, value string }{
		{"access_key", "AKID\nX-Injected: 1"},
		{"region", "eu-west-3\r\n" + poison},
		{"sts_endpoint", "javascript:" + poison},
		{"sts_endpoint", "http://sts.example.com/" + poison},
		{"iam_endpoint", "file:///etc/" + poison},
		{"tink_kek_uri", "insecure-local-kek://" + poison},
		{"max_retries", "1; " + poison},
		{"sts_timeout", "forever" + poison},
		{"key_store", "../" + poison},
	} {
		data := with(e.baseConfig(), tc.field, tc.value)
		if tc.field == "tink_kek_uri" {
			cases = append(cases, hostileCase{"config insecure " + tc.field, logical.UpdateOperation, "config", data, 400, tc.field, poison})
			continue
		}
		cases = append(cases, hostileCase{"config bad " + tc.field, logical.UpdateOperation, "config", data, 400, tc.field, poison})
	}
	pkcs := map[string]any{"key_store": "pkcs11", "pkcs11_token_label": "t", "pkcs11_pin": "1234"}
	for _, module := range []string{"/tmp/" + poison + "/libpwn.so", "/usr/lib/softhsm/../../../tmp/libpwn.so", "libsofthsm2.so"} {
		cases = append(cases, hostileCase{"config module " + module, logical.UpdateOperation, "config", with(mergeMaps(e.baseConfig(), pkcs), "pkcs11_module", module), 400, "pkcs11_module", ""})
	}
	for _, dev := range []string{"/dev/null", "/dev/tpm0/../null", "tcp://169.254.169.254:80", "/proc/self/mem", "tcp://127.0.0.1:2321"} {
		cases = append(cases, hostileCase{"config tpm " + dev, logical.UpdateOperation, "config", with(e.baseConfig(), "key_store", "tpm", "tpm_device", dev), 400, "tpm_device", ""})
	}
	return cases
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := with(a)
	for k, v := range b {
		out[k] = v
	}
	return out
}

func roleHostile() []hostileCase {
	assumed := map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN}
	var services []string
	for i := range maxListItems + 1 {
		services = append(services, fmt.Sprintf("svc%d", i))
	}
	many := strings.Join(services, ",")
	return []hostileCase{
		{name: "role type injection", path: "roles/r", data: map[string]any{"credential_type": "session_token\n" + poison}, status: 400, field: "credential_type", value: poison},
		{name: "role arn injection", path: "roles/r", data: with(assumed, "role_arns", testRoleARN+"&Action=CreateAccessKey"), status: 400, field: "role_arns", value: "CreateAccessKey"},
		{name: "role arn of a user", path: "roles/r", data: with(assumed, "role_arns", "arn:aws:iam::123456789012:user/"+poison), status: 400, field: "role_arns", value: poison},
		{name: "policy arn injection", path: "roles/r", data: with(assumed, "policy_arns", "arn:aws:iam::aws:policy/X&"+poison), status: 400, field: "policy_arns", value: poison},
		{name: "policy not an object", path: "roles/r", data: with(assumed, "policy_document", "[\""+poison+"\"]"), status: 400, field: "policy_document", value: poison},
		{name: "policy oversized", path: "roles/r", data: with(assumed, "policy_document", `{"a":"`+strings.Repeat("x", maxFieldLength)+`"}`), status: 400, field: "policy_document"},
		{name: "tag key injection", path: "roles/r", data: with(assumed, "session_tags", "a&Tags.member.2.Key="+poison+"=v"), status: 400, field: "session_tags", value: poison},
		{name: "tag value newline", path: "roles/r", data: with(assumed, "session_tags", []any{"team=a\n" + poison}), status: 400, field: "session_tags", value: poison},
		{name: "51 tags", path: "roles/r", data: with(assumed, "session_tags", manyTags(51)), status: 400, field: "session_tags"},
		{name: "external id injection", path: "roles/r", data: with(assumed, "external_id", "x&RoleArn="+poison), status: 400, field: "external_id", value: poison},
		{name: "source identity injection", path: "roles/r", data: with(assumed, "source_identity", "me\n"+poison), status: 400, field: "source_identity", value: poison},
		{name: "mfa serial injection", path: "roles/r", data: with(assumed, "mfa_serial_number", "arn:aws:iam::1:mfa/x&"+poison), status: 400, field: "mfa_serial_number", value: poison},
		{name: "too many services", path: "roles/r", data: with(assumed, "allowed_services", many), status: 400, field: "allowed_services"},
		{name: "too many list items", path: "roles/r", data: with(assumed, "allowed_regions", anyRepeat("eu-west-3", maxListItems+1)), status: 400, field: "allowed_regions"},
		{name: "host *.", path: "roles/r", data: with(assumed, "allowed_hosts", "*."), status: 400, field: "allowed_hosts"},
		{name: "host *.*", path: "roles/r", data: with(assumed, "allowed_hosts", "*.*"), status: 400, field: "allowed_hosts"},
		{name: "host with path", path: "roles/r", data: with(assumed, "allowed_hosts", "example.com/"+poison), status: 400, field: "allowed_hosts", value: poison},
		{name: "host with userinfo", path: "roles/r", data: with(assumed, "allowed_hosts", poison+"@example.com"), status: 400, field: "allowed_hosts", value: poison},
		{name: "host *x.com", path: "roles/r", data: with(assumed, "allowed_hosts", "*x.com"), status: 400, field: "allowed_hosts"},
		{name: "ttl as list", path: "roles/r", data: with(assumed, "max_sts_ttl", []any{poison}), status: 400, field: "max_sts_ttl", value: poison},
		{name: "ttl negative", path: "roles/r", data: with(assumed, "max_sts_ttl", "-1h"), status: 400, field: "max_sts_ttl"},
		{name: "ttl huge", path: "roles/r", data: with(assumed, "max_sts_ttl", "99999h"), status: 400, field: "max_sts_ttl"},
		{name: "role name oversized", path: "roles/" + strings.Repeat("r", 300), data: assumed, status: 400, field: "name"},
		{name: "services as map", path: "roles/r", data: with(assumed, "allowed_services", map[string]any{"s3": poison}), status: 400, field: "allowed_services", value: poison},
	}
}

func manyTags(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%d=v", i)
	}
	return out
}

func anyRepeat(s string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func credsHostile() []hostileCase {
	return []hostileCase{
		{name: "creds no role", path: "creds/" + poison, status: 400, field: "name", value: poison},
		{name: "creds session name injection", path: "creds/deploy", data: map[string]any{"role_session_name": "a&RoleArn=" + poison}, status: 400, field: "role_session_name", value: poison},
		{name: "creds session name newline", path: "creds/deploy", data: map[string]any{"role_session_name": "a\n" + poison}, status: 400, field: "role_session_name", value: poison},
		{name: "creds session name oversized", path: "creds/deploy", data: map[string]any{"role_session_name": strings.Repeat("a", 65)}, status: 400, field: "role_session_name"},
		{name: "creds role arn not the role's", path: "creds/deploy", data: map[string]any{"role_arn": "arn:aws:iam::123456789012:role/" + poison}, status: 400, field: "role_arn", value: poison},
		{name: "creds role arn injection", path: "creds/deploy", data: map[string]any{"role_arn": testRoleARN + "&x=" + poison}, status: 400, field: "role_arn", value: poison},
		{name: "creds ttl beyond max", path: "creds/deploy", data: map[string]any{"ttl": "100h"}, status: 400, field: "ttl"},
		{name: "creds ttl as map", path: "creds/deploy", data: map[string]any{"ttl": map[string]any{"a": poison}}, status: 400, field: "ttl", value: poison},
		{name: "creds ttl text", path: "creds/deploy", data: map[string]any{"ttl": poison}, status: 400, field: "ttl", value: poison},
		{name: "creds mfa without device", path: "creds/deploy", data: map[string]any{"mfa_code": "123456"}, status: 400, field: "mfa_code"},
		{name: "creds mfa injection", path: "creds/mfa", data: map[string]any{"mfa_code": "123456&" + poison}, status: 400, field: "mfa_code", value: poison},
		{name: "creds session name on session_token", path: "creds/session", data: map[string]any{"role_session_name": poison}, status: 400, field: "role_session_name", value: poison},
		{name: "creds session name as list", path: "creds/deploy", data: map[string]any{"role_session_name": []any{poison}}, status: 400, field: "role_session_name", value: poison},
		{name: "creds federation name oversized", path: "creds/fed", data: map[string]any{"role_session_name": strings.Repeat("f", 33)}, status: 400, field: "role_session_name"},
	}
}

func signHostile(e *testEnv) []hostileCase {
	good := map[string]any{"url": e.peer.URL + "/", "service": "sts", "method": "POST"}
	body := base64.StdEncoding.EncodeToString([]byte("Action=GetCallerIdentity&Version=2011-06-15"))
	hdr := func(h map[string]any) map[string]any { return with(good, "headers", h) }
	manyHeaders := map[string]any{}
	for i := range maxHeaderNames + 1 {
		manyHeaders[fmt.Sprintf("X-H%d", i)] = "v"
	}
	bigHeaders := map[string]any{}
	for i := range 9 {
		bigHeaders[fmt.Sprintf("X-Big%d", i)] = strings.Repeat("v", maxHeaderValue)
	}
	c := func(name string, data map[string]any, status int, field, value string) hostileCase {
		return hostileCase{name: name, path: "sign/signer", data: data, status: status, field: field, value: value}
	}
	return []hostileCase{
		c("sign other service", with(good, "service", "iam"), 403, "service", ""),
		c("sign service wildcard", with(good, "service", "*"), 400, "service", ""),
		c("sign service injection", with(good, "service", "sts\n"+poison), 400, "service", poison),
		c("sign other region", with(good, "region", "us-east-1"), 403, "region", ""),
		c("sign region injection", with(good, "region", "eu-west-3/"+poison), 400, "region", poison),
		c("sign other host", with(good, "url", "https://sts.amazonaws.com/"), 403, "url", ""),
		c("sign host suffix", with(good, "url", "https://127.0.0.1.evil.example/"), 403, "url", ""),
		c("sign userinfo", with(good, "url", "https://127.0.0.1@evil.example/"), 400, "url", ""),
		c("sign userinfo host", with(good, "url", "https://"+poison+"@127.0.0.1/"), 400, "url", poison),
		c("sign fragment", with(good, "url", e.peer.URL+"/#"+poison), 400, "url", poison),
		c("sign relative url", with(good, "url", "/"+poison), 400, "url", poison),
		c("sign file url", with(good, "url", "file:///etc/"+poison), 400, "url", poison),
		c("sign url oversized", with(good, "url", e.peer.URL+"/"+strings.Repeat("a", maxURLLength)), 400, "url", ""),
		c("sign method injection", with(good, "method", "GET /x HTTP/1.1\r\n"+poison), 400, "method", poison),
		c("sign method oversized", with(good, "method", strings.Repeat("G", 100)), 400, "method", ""),
		c("sign header names", hdr(manyHeaders), 400, "headers", ""),
		c("sign header value oversized", hdr(map[string]any{"X-A": strings.Repeat("v", maxHeaderValue+1)}), 400, "headers", ""),
		c("sign headers total", hdr(bigHeaders), 400, "headers", ""),
		c("sign header CRLF", hdr(map[string]any{"X-A": "v\r\nX-Injected: " + poison}), 400, "headers", poison),
		c("sign header NUL", hdr(map[string]any{"X-A": "v\x00" + poison}), 400, "headers", poison),
		c("sign header DEL", hdr(map[string]any{"X-A": "v\x7f" + poison}), 400, "headers", poison),
		c("sign header bad name", hdr(map[string]any{"X A": poison}), 400, "headers", poison),
		c("sign header name colon", hdr(map[string]any{"X-A:" + poison: "v"}), 400, "headers", poison),
		c("sign authorization", hdr(map[string]any{"Authorization": poison}), 400, "headers", poison),
		c("sign x-amz-date", hdr(map[string]any{"x-amz-date": poison}), 400, "headers", poison),
		c("sign host header", hdr(map[string]any{"HOST": "evil.example"}), 400, "headers", "evil.example"),
		c("sign security token", hdr(map[string]any{"X-Amz-Security-Token": poison}), 400, "headers", poison),
		c("sign content-sha256", hdr(map[string]any{"X-Amz-Content-Sha256": poison}), 400, "headers", poison),
		c("sign header value as map", hdr(map[string]any{"X-A": map[string]any{"v": poison}}), 400, "headers", poison),
		c("sign header value list of maps", hdr(map[string]any{"X-A": []any{map[string]any{"v": poison}}}), 400, "headers", poison),
		c("sign headers as list", with(good, "headers", []any{poison}), 400, "headers", poison),
		c("sign body not base64", with(good, "body", "!!"+poison), 400, "body", poison),
		c("sign body and hash", with(good, "body", body, "payload_hash", strings.Repeat("a", 64)), 400, "payload_hash", ""),
		c("sign hash upper case", with(good, "payload_hash", strings.Repeat("A", 64)), 400, "payload_hash", ""),
		c("sign hash injection", with(good, "payload_hash", poison), 400, "payload_hash", poison),
		c("sign presign too long", with(good, "presign", true, "expires", "8d"), 400, "expires", ""),
		c("sign presign negative", with(good, "presign", true, "expires", "-5m"), 400, "expires", ""),
		c("sign expires without presign", with(good, "expires", "5m"), 400, "expires", ""),
		c("sign presign as text", with(good, "presign", poison), 400, "presign", poison),
		c("sign expires as list", with(good, "presign", true, "expires", []any{poison}), 400, "expires", poison),
		c("sign url as list", with(good, "url", []any{poison}), 400, "url", poison),
		c("sign no role", with(good), 400, "name", ""),
	}
}

// The adversarial suite: every hostile request gets its safe answer, names
// the field or reason, quotes none of what it sent, and changes nothing.
func TestHostileRequests(t *testing.T) {
	e := newTestEnv(t)
	cases := hostileCases(e)
	if len(cases) < 100 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	e.configure(t)
	e.mustWrite(t, "roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN, "max_sts_ttl": "2h"})
	e.mustWrite(t, "roles/mfa", map[string]any{"credential_type": "session_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/vault"})
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	e.mustWrite(t, "roles/fed", map[string]any{"credential_type": "federation_token"})
	e.mustWrite(t, "roles/signer", map[string]any{"credential_type": "session_token", "allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "eu-west-3", "allowed_hosts": "127.0.0.1"})
	// As registered in production: development-only settings refused.
	e.b.env.allowInsecure = false
	before := storageSnapshot(t, e)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if tc.name == "sign no role" {
				path = "sign/nobody"
			}
			resp, err := e.request(t, tc.op, path, tc.data)
			got, text := status(resp, err), errText(resp, err)
			if got != tc.status || !strings.Contains(text, tc.field) {
				t.Fatalf("got %d %q, want %d naming %s", got, text, tc.status, tc.field)
			}
			if tc.value != "" && strings.Contains(text, tc.value) {
				t.Fatalf("the answer quotes what was sent: %q", text)
			}
			keytest.NoSecretIn(t, "answer", []byte(text))
		})
	}
	if after := storageSnapshot(t, e); after != before {
		t.Fatal("a hostile request changed storage")
	}
}

// storageSnapshot is every stored entry, for comparing before and after.
func storageSnapshot(t *testing.T, e *testEnv) string {
	t.Helper()
	var b strings.Builder
	for _, k := range storageKeys(t, e.storage) {
		entry, _ := e.storage.Get(context.Background(), k)
		fmt.Fprintf(&b, "%s=%x\n", k, entry.Value)
	}
	return b.String()
}
