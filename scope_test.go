package awshmac

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// scopeCase is one sign/ request against one role, and its answer: 200,
// 403 with the reason, or 400 naming the field.
type scopeCase struct {
	name   string
	role   string
	data   map[string]any
	status int
	reason string
}

var scopeRoles = map[string]map[string]any{
	"sts-gci": {"allowed_services": "sts", "allowed_actions": "sts:GetCallerIdentity", "allowed_regions": "*", "allowed_hosts": "*"},
	"sts-any": {"allowed_services": "sts", "allowed_regions": "*", "allowed_hosts": "*"},
	"iam":     {"allowed_services": "iam", "allowed_regions": "*", "allowed_hosts": "*"},
	"ddb":     {"allowed_services": "dynamodb", "allowed_actions": "dynamodb:GetItem,dynamodb:Query", "allowed_regions": "*", "allowed_hosts": "*"},
	"ddbw":    {"allowed_services": "dynamodb", "allowed_actions": "dynamodb:Get*", "allowed_regions": "*", "allowed_hosts": "*"},
	"s3ro":    {"allowed_services": "s3", "allowed_methods": "get,HEAD", "allowed_paths": "/reports-bucket/2026/*", "max_presign_expires": "1h", "allowed_regions": "*", "allowed_hosts": "*"},
	"api":     {"allowed_services": "execute-api", "allowed_paths": "/api/v1/*", "allowed_regions": "*", "allowed_hosts": "*"},
	"copy":    {"allowed_services": "s3", "allowed_methods": "PUT", "allowed_paths": "/bucket-a/*", "allowed_regions": "*", "allowed_hosts": "*"},
	"vhost":   {"allowed_services": "s3", "allowed_paths": "/*", "allowed_regions": "*", "allowed_hosts": "bucket-a.s3.eu-west-3.amazonaws.com"},
	"s3act":   {"allowed_services": "s3,dynamodb", "allowed_actions": "dynamodb:GetItem", "allowed_regions": "*", "allowed_hosts": "*"},
	"s3star":  {"allowed_services": "s3,dynamodb", "allowed_actions": "dynamodb:GetItem,s3:*", "allowed_regions": "*", "allowed_hosts": "*"},
}

func form(body string) string { return base64.StdEncoding.EncodeToString([]byte(body)) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var formHeaders = map[string]any{"Content-Type": "application/x-www-form-urlencoded"}

func stsPost(body string) map[string]any {
	return map[string]any{"method": "POST", "url": "https://sts.amazonaws.com/", "service": "sts", "region": "us-east-1", "headers": formHeaders, "body": form(body)}
}

func stsGet(query string) map[string]any {
	return map[string]any{"url": "https://sts.amazonaws.com/?" + query, "service": "sts", "region": "us-east-1"}
}

func ddb(target string) map[string]any {
	return map[string]any{"method": "POST", "url": "https://dynamodb.eu-west-3.amazonaws.com/", "service": "dynamodb",
		"headers": map[string]any{"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"}, "body": form(`{"TableName":"t"}`)}
}

func s3req(method, path string) map[string]any {
	return map[string]any{"method": method, "url": "https://s3.eu-west-3.amazonaws.com" + path, "service": "s3"}
}

func apiReq(path string) map[string]any {
	return map[string]any{"url": "https://abc.execute-api.eu-west-3.amazonaws.com" + path, "service": "execute-api"}
}

func mintingCases() []scopeCase {
	return []scopeCase{
		{"GetCallerIdentity listed (form)", "sts-gci", stsPost("Action=GetCallerIdentity&Version=2011-06-15"), 200, ""},
		{"GetCallerIdentity listed (query)", "sts-gci", stsGet("Action=GetCallerIdentity&Version=2011-06-15"), 200, ""},
		{"AssumeRole in form", "sts-gci", stsPost("Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin&RoleSessionName=x"), 403, "action"},
		{"AssumeRole in query", "sts-gci", stsGet("Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin&RoleSessionName=x"), 403, "action"},
		{"GetFederationToken in form", "sts-gci", stsPost("Action=GetFederationToken&Name=x"), 403, "action"},
		{"GetSessionToken in query", "sts-gci", stsGet("Action=GetSessionToken"), 403, "action"},
		{"AssumeRole, role without actions", "sts-any", stsPost("Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin"), 403, "mints credentials"},
		{"GetCallerIdentity, role without actions", "sts-any", stsGet("Action=GetCallerIdentity"), 403, "mints credentials"},
		{"CreateAccessKey in form", "iam", map[string]any{"method": "POST", "url": "https://iam.amazonaws.com/", "service": "iam", "region": "us-east-1", "headers": formHeaders, "body": form("Action=CreateAccessKey&Version=2010-05-08")}, 403, "mints credentials"},
		{"CreateAccessKey in query", "iam", map[string]any{"url": "https://iam.amazonaws.com/?Action=CreateAccessKey&Version=2010-05-08", "service": "iam", "region": "us-east-1"}, 403, "mints credentials"},
		{"ListUsers on iam", "iam", map[string]any{"url": "https://iam.amazonaws.com/?Action=ListUsers", "service": "iam", "region": "us-east-1"}, 403, "mints credentials"},
		{"action in lower case name", "sts-gci", stsGet("action=AssumeRole"), 403, "another case"},
		{"action name upper case", "sts-gci", stsGet("ACTION=AssumeRole"), 403, "another case"},
		{"action value other case", "sts-gci", stsGet("Action=assumerole"), 403, "action"},
		{"action value matched in any case", "sts-gci", stsGet("Action=getcalleridentity"), 200, ""},
		{"duplicate Action in query", "sts-gci", stsGet("Action=GetCallerIdentity&Action=AssumeRole"), 403, "more than one"},
		{"Action in query and form", "sts-gci", mergeMaps(stsPost("Action=AssumeRole"), map[string]any{"url": "https://sts.amazonaws.com/?Action=GetCallerIdentity"}), 403, "more than one"},
		{"no action at all", "sts-gci", stsGet("Version=2011-06-15"), 403, "cannot be determined"},
		{"empty action", "sts-gci", stsGet("Action="), 403, "empty"},
		{"AssumeRole in a text/plain body beside the query's action", "sts-gci", mergeMaps(stsPost("Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin"), map[string]any{"url": "https://sts.amazonaws.com/?Action=GetCallerIdentity", "headers": map[string]any{"Content-Type": "text/plain"}}), 403, "more than one"},
		{"AssumeRole in an untyped body", "sts-gci", mergeMaps(stsPost("Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin"), map[string]any{"headers": map[string]any{}}), 403, "action"},
		{"query action, body hidden behind payload_hash", "sts-gci", map[string]any{"method": "POST", "url": "https://sts.amazonaws.com/?Action=GetCallerIdentity", "service": "sts", "region": "us-east-1", "payload_hash": sha256Hex("Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin")}, 403, "payload_hash"},
		{"query action, body UNSIGNED-PAYLOAD", "sts-gci", map[string]any{"method": "POST", "url": "https://sts.amazonaws.com/?Action=GetCallerIdentity", "service": "sts", "region": "us-east-1", "payload_hash": "UNSIGNED-PAYLOAD"}, 403, "payload_hash"},
		{"query action, empty body by hash", "sts-gci", map[string]any{"method": "POST", "url": "https://sts.amazonaws.com/?Action=GetCallerIdentity", "service": "sts", "region": "us-east-1", "payload_hash": sha256Hex("")}, 200, ""},
		{"action hidden behind payload_hash", "sts-gci", map[string]any{"method": "POST", "url": "https://sts.amazonaws.com/", "service": "sts", "region": "us-east-1", "payload_hash": strings.Repeat("a", 64)}, 403, "cannot be determined"},
		{"X-Amz-Target for sts", "sts-gci", map[string]any{"method": "POST", "url": "https://sts.amazonaws.com/", "service": "sts", "region": "us-east-1", "headers": map[string]any{"X-Amz-Target": "AWSSecurityTokenServiceV20110615.AssumeRole"}}, 403, "action"},
		{"malformed form body", "sts-gci", stsPost("Action=%zz"), 400, "body"},
	}
}

func actionCases() []scopeCase {
	return []scopeCase{
		{"JSON target listed", "ddb", ddb("DynamoDB_20120810.GetItem"), 200, ""},
		{"JSON target listed (Query)", "ddb", ddb("DynamoDB_20120810.Query"), 200, ""},
		{"JSON target not listed", "ddb", ddb("DynamoDB_20120810.DeleteTable"), 403, "action"},
		{"JSON target PutItem", "ddb", ddb("DynamoDB_20120810.PutItem"), 403, "action"},
		{"two JSON targets", "ddb", mergeMaps(ddb("DynamoDB_20120810.GetItem"), map[string]any{"headers": map[string]any{"X-Amz-Target": []any{"DynamoDB_20120810.GetItem", "DynamoDB_20120810.DeleteTable"}}}), 403, "more than one"},
		{"target and Action", "ddb", mergeMaps(ddb("DynamoDB_20120810.GetItem"), map[string]any{"url": "https://dynamodb.eu-west-3.amazonaws.com/?Action=DeleteTable"}), 403, "more than one"},
		{"no target", "ddb", map[string]any{"method": "POST", "url": "https://dynamodb.eu-west-3.amazonaws.com/", "service": "dynamodb"}, 403, "cannot be determined"},
		{"JSON target with a hidden body", "ddb", with(ddb("DynamoDB_20120810.GetItem"), "body", nil, "payload_hash", sha256Hex(`{"TableName":"t"}`)), 200, ""},
		{"wildcard allows GetItem", "ddbw", ddb("DynamoDB_20120810.GetItem"), 200, ""},
		{"wildcard allows GetResourcePolicy", "ddbw", ddb("DynamoDB_20120810.GetResourcePolicy"), 200, ""},
		{"target naming another service's operation", "ddbw", ddb("DynamoDB_20120810.GetRecords"), 403, "names no operation"},
		{"streams target on the dynamodb host", "ddbw", ddb("DynamoDBStreams_20120810.GetRecords"), 403, "names no operation"},
		{"wildcard refuses DeleteItem", "ddbw", ddb("DynamoDB_20120810.DeleteItem"), 403, "action"},
		{"s3 under an action list without s3:*", "s3act", s3req("GET", "/b/k"), 403, "may not sign s3:GetObject"},
		{"s3 with s3:*", "s3star", s3req("GET", "/b/k"), 200, ""},
		{"dynamodb beside s3:*", "s3star", ddb("DynamoDB_20120810.GetItem"), 200, ""},
		{"dynamodb not listed beside s3:*", "s3star", ddb("DynamoDB_20120810.Scan"), 403, "action"},
	}
}

func pathCases() []scopeCase {
	return []scopeCase{
		{"s3 prefix read", "s3ro", s3req("GET", "/reports-bucket/2026/q3.csv"), 200, ""},
		{"s3 prefix deep", "s3ro", s3req("GET", "/reports-bucket/2026/a/b/c.csv"), 200, ""},
		{"s3 method lower case in role", "s3ro", s3req("get", "/reports-bucket/2026/q3.csv"), 200, ""},
		{"s3 HEAD", "s3ro", s3req("HEAD", "/reports-bucket/2026/q3.csv"), 200, ""},
		{"s3 other prefix", "s3ro", s3req("GET", "/reports-bucket/2025/q3.csv"), 403, "path"},
		{"s3 other bucket", "s3ro", s3req("GET", "/payroll/2026/q3.csv"), 403, "path"},
		{"s3 bucket listing", "s3ro", s3req("GET", "/reports-bucket/"), 403, "path"},
		{"s3 PUT refused", "s3ro", s3req("PUT", "/reports-bucket/2026/q3.csv"), 403, "method"},
		{"s3 DELETE refused", "s3ro", s3req("DELETE", "/reports-bucket/2026/q3.csv"), 403, "method"},
		{"s3 DeleteBucket refused", "s3ro", s3req("DELETE", "/reports-bucket"), 403, "method"},
		{"s3 encoded slash stays in prefix", "s3ro", s3req("GET", "/reports-bucket/2026%2Fq3.csv"), 200, ""},
		{"s3 encoded other bucket", "s3ro", s3req("GET", "/reports%2Dbucket2/2026/x"), 403, "path"},
		{"s3 double slash is literal", "s3ro", s3req("GET", "/reports-bucket//2026/x"), 403, "path"},
		{"s3 bad percent-encoding", "s3ro", s3req("GET", "/reports-bucket/2026/%zz"), 400, "url"},
		{"api path allowed", "api", apiReq("/api/v1/users"), 200, ""},
		{"api dot-dot escapes", "api", apiReq("/api/v1/../admin"), 403, "path"},
		{"api encoded dot-dot escapes", "api", apiReq("/api/v1/%2E%2E/%2E%2E/admin"), 403, "path"},
		{"api encoded slash dot-dot", "api", apiReq("/api/v1%2F..%2F..%2Fadmin"), 403, "path"},
		{"api double slash normalised in", "api", apiReq("/api//v1/users"), 200, ""},
		{"api double slash out", "api", apiReq("//admin"), 403, "path"},
		{"api dot segment in", "api", apiReq("/api/./v1/users"), 200, ""},
		{"api other path", "api", apiReq("/api/v2/users"), 403, "path"},
		{"presign within max", "s3ro", mergeMaps(s3req("GET", "/reports-bucket/2026/q3.csv"), map[string]any{"presign": true, "expires": "30m"}), 200, ""},
		{"presign beyond max", "s3ro", mergeMaps(s3req("GET", "/reports-bucket/2026/q3.csv"), map[string]any{"presign": true, "expires": "2h"}), 403, "max_presign_expires"},
		{"presign default beyond nothing", "s3ro", mergeMaps(s3req("GET", "/reports-bucket/2026/q3.csv"), map[string]any{"presign": true}), 200, ""},
	}
}

func headerCases() []scopeCase {
	var cases []scopeCase
	ok := s3req("GET", "/reports-bucket/2026/q3.csv")
	for _, p := range authParams {
		cases = append(cases,
			scopeCase{"header " + p, "s3ro", mergeMaps(ok, map[string]any{"headers": map[string]any{strings.ToLower(p): "x"}}), 400, "headers"},
			scopeCase{"query " + p, "s3ro", mergeMaps(ok, map[string]any{"url": "https://s3.eu-west-3.amazonaws.com/reports-bucket/2026/q3.csv?" + p + "=x"}), 400, "url"},
		)
	}
	cases = append(cases, scopeCase{"presign X-Amz-Expires in query", "s3ro", mergeMaps(ok, map[string]any{"presign": true, "expires": "60s", "url": "https://s3.eu-west-3.amazonaws.com/reports-bucket/2026/q3.csv?X-Amz-Expires=604800"}), 400, "url"})
	copyReq := func(src string, extra ...any) map[string]any {
		h := map[string]any{"x-amz-copy-source": src}
		for i := 0; i < len(extra); i += 2 {
			h[extra[i].(string)] = extra[i+1]
		}
		return mergeMaps(s3req("PUT", "/bucket-a/copy.csv"), map[string]any{"headers": h})
	}
	vhost := func(src string) map[string]any {
		return map[string]any{"method": "PUT", "url": "https://bucket-a.s3.eu-west-3.amazonaws.com/copy.csv", "service": "s3", "headers": map[string]any{"x-amz-copy-source": src}}
	}
	return append(cases,
		scopeCase{"copy from allowed bucket", "copy", copyReq("/bucket-a/source.csv"), 200, ""},
		scopeCase{"copy without leading slash", "copy", copyReq("bucket-a/source.csv"), 200, ""},
		scopeCase{"copy with version", "copy", copyReq("/bucket-a/source.csv?versionId=3"), 200, ""},
		scopeCase{"copy from other bucket", "copy", copyReq("/other-bucket/payroll.csv"), 403, "copy-source"},
		scopeCase{"copy encoded other bucket", "copy", copyReq("/other%2Dbucket/payroll.csv"), 403, "copy-source"},
		scopeCase{"copy dot-dot is literal in s3", "copy", copyReq("/bucket-a/../other-bucket/payroll.csv"), 200, ""},
		scopeCase{"copy range with source", "copy", copyReq("/bucket-a/source.csv", "x-amz-copy-source-range", "bytes=0-9"), 200, ""},
		scopeCase{"copy range without source", "copy", mergeMaps(s3req("PUT", "/bucket-a/copy.csv"), map[string]any{"headers": map[string]any{"x-amz-copy-source-range": "bytes=0-9"}}), 403, "copy-source-range"},
		scopeCase{"two copy sources", "copy", copyReq("/bucket-a/a", "X-Amz-Copy-Source", []any{"/bucket-a/a", "/other/b"}), 403, "copy-source"},
		scopeCase{"virtual-hosted copy, same bucket", "vhost", vhost("/bucket-a/source.csv"), 200, ""},
		scopeCase{"virtual-hosted copy, other bucket", "vhost", vhost("/payroll/secret.csv"), 403, "another bucket"},
		scopeCase{"copy bad encoding", "copy", copyReq("/bucket-a/%zz"), 400, "copy-source"},
	)
}

// Every scope rule, each with hostile requests and an allowed control.
func TestSigningScope(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	for name, fields := range scopeRoles {
		e.mustWrite(t, "roles/"+name, fields)
	}
	var cases []scopeCase
	for _, group := range [][]scopeCase{mintingCases(), actionCases(), pathCases(), headerCases()} {
		cases = append(cases, group...)
	}
	if len(cases) < 80 {
		t.Fatalf("only %d scope cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, "sign/"+tc.role, tc.data)
			got, text := status(resp, err), errText(resp, err)
			if got != tc.status || !strings.Contains(text, tc.reason) {
				t.Fatalf("got %d %q, want %d %q", got, text, tc.status, tc.reason)
			}
			if tc.status == http.StatusOK && resp.Data["headers"] == nil {
				t.Fatalf("allowed but nothing signed: %v", resp.Data)
			}
		})
	}
}

// Wildcards for services that mint credentials are refused at role write.
func TestMintingWildcardsRefused(t *testing.T) {
	e := newTestEnv(t)
	for _, actions := range []string{"sts:*", "iam:Create*", "sso:Get*", "signin:*", "rolesanywhere:*", "cognito-identity:Get*", "sso-oauth:*"} {
		resp, err := e.request(t, logical.UpdateOperation, "roles/r", map[string]any{"allowed_services": "*", "allowed_actions": actions})
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), "mints credentials") {
			t.Fatalf("%s: %v %v", actions, resp, err)
		}
	}
	// A wildcard for a service that does not mint credentials is fine.
	e.mustWrite(t, "roles/r", map[string]any{"allowed_services": "*", "allowed_actions": "dynamodb:Get*"})
}
