package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// scopeMount is a mount of its own, so the scope runs without the other
// subtests: MinIO's user as the key, which the STS peer knows too.
const scopeMount = "aws-hmac-scope"

const (
	gciForm     = "Action=GetCallerIdentity&Version=2011-06-15"
	formType    = "application/x-www-form-urlencoded"
	vaultUserID = "<Arn>arn:aws:iam::123456789012:user/vault</Arn>"
)

// call is a request to sign with sign/ and then send. body is what is sent;
// it is signed unless hash stands for it.
type call struct {
	method, url, service string
	headers              map[string]string
	body                 []byte
	hash                 string
}

// signed is sign/'s answer: the URL to send and the headers to add.
type signed struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

func (c call) fields() map[string]any {
	f := map[string]any{"method": c.method, "url": c.url, "service": c.service}
	if len(c.headers) > 0 {
		h := map[string]any{}
		for k, v := range c.headers {
			h[k] = v
		}
		f["headers"] = h
	}
	switch {
	case c.hash != "":
		f["payload_hash"] = c.hash
	case len(c.body) > 0:
		f["body"] = base64.StdEncoding.EncodeToString(c.body)
	}
	return f
}

// send sends the request as signed: the caller's headers, Vault's, the body.
func (c call) send(t *testing.T, s signed) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, s.URL, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// signOK has Vault sign c as role, which must succeed.
func (w *world) signOK(t *testing.T, role string, c call) signed {
	t.Helper()
	code, out := w.putJSON(t, scopeMount+"/sign/"+role, c.fields())
	var resp struct{ Data signed }
	if err := json.Unmarshal([]byte(out), &resp); code != http.StatusOK || err != nil || resp.Data.Headers["Authorization"] == "" {
		t.Fatalf("sign/%s %s %s: %d %s", role, c.method, c.url, code, out)
	}
	return resp.Data
}

// refusal is a request the role must not sign, and why.
type refusal struct {
	name   string
	c      call
	status int
	reason string
}

// refuse expects Vault's refusal: the status, the reason, and no signature.
func (w *world) refuse(t *testing.T, role string, r refusal) {
	t.Helper()
	code, out := w.putJSON(t, scopeMount+"/sign/"+role, r.c.fields())
	var resp struct {
		Errors []string       `json:"errors"`
		Data   map[string]any `json:"data"`
	}
	_ = json.Unmarshal([]byte(out), &resp)
	if msg := strings.Join(resp.Errors, " "); code != r.status || !strings.Contains(msg, r.reason) {
		t.Errorf("%s (sign/%s %s %s): %d %q, want %d with %q", r.name, role, r.c.method, r.c.url, code, msg, r.status, r.reason)
	}
	if resp.Data != nil || strings.Contains(out, "Authorization") || strings.Contains(out, "AWS4-HMAC-SHA256") || strings.Contains(out, "Signature") {
		t.Errorf("%s: the refusal carries a signature", r.name)
	}
}

// runScope: what a role allows is signed and accepted by the STS peer and
// MinIO; each way around the scope is refused with its reason.
func (w *world) runScope(t *testing.T) {
	w.cli(t, "secrets", "enable", "-path="+scopeMount, pluginName)
	w.cli(t, "write", scopeMount+"/config", "access_key="+w.minio.AccessKey, "secret_key="+w.minio.SecretKey,
		"key_store=transit", "transit_address="+w.vault.Addr, "transit_token="+w.storeToken,
		"transit_key_name=aws-hmac-scope", "sts_endpoint="+w.peer.URL, "region=us-east-1")
	t.Run("whoami", w.scopeWhoami)
	t.Run("upload", w.scopeUpload)
	t.Run("copy", w.scopeCopy)
	t.Run("limits", w.scopeLimits)
	t.Run("unknown-fields", w.scopeUnknownFields)
}

// scopeUnknownFields: a misspelt field is refused by the vault CLI and the
// HTTP API alike, naming it, and the role is not created.
func (w *world) scopeUnknownFields(t *testing.T) {
	out, err := w.tryCLI("write", scopeMount+"/roles/typo", "allowed_services=s3", "allowed_host=s3.amazonaws.com")
	if err == nil || !strings.Contains(out, "allowed_host: no such field") {
		t.Errorf("vault write with allowed_host: %v %s", err, out)
	}
	code, body := w.putJSON(t, scopeMount+"/roles/typo", map[string]any{"allowed_services": "s3", "default_ttl": "15m"})
	if code != http.StatusBadRequest || !strings.Contains(body, "default_ttl: no such field") {
		t.Errorf("HTTP API with default_ttl: %d %s", code, body)
	}
	if out, err := w.tryCLI("read", scopeMount+"/roles/typo"); err == nil && strings.Contains(out, "allowed_services") {
		t.Errorf("a refused write created the role: %s", out)
	}
}

// scopeLimits: the documented header limit through Vault's HTTP API, as
// numbers: 64 header names are signed, 65 are a 400 naming the field.
func (w *world) scopeLimits(t *testing.T) {
	w.cli(t, "write", scopeMount+"/roles/limits", "allowed_services=sts", "allowed_regions=*",
		"allowed_hosts="+strings.TrimPrefix(w.peer.URL, "http://"), "allowed_actions=sts:GetCallerIdentity")
	for _, n := range []int{64, 65} {
		headers := map[string]any{}
		for i := range n {
			headers[fmt.Sprintf("X-Limit-%02d", i)] = "v"
		}
		code, out := w.putJSON(t, scopeMount+"/sign/limits", map[string]any{"service": "sts", "headers": headers,
			"url": w.peer.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"})
		switch {
		case n == 64 && code != http.StatusOK:
			t.Errorf("64 header names: %d %s", code, out)
		case n == 65 && (code != http.StatusBadRequest || !strings.Contains(out, "headers: more than 64 header names")):
			t.Errorf("65 header names: %d %s", code, out)
		}
	}
}

// scopeWhoami is the README's whoami role against the STS peer.
func (w *world) scopeWhoami(t *testing.T) {
	w.cli(t, "write", scopeMount+"/roles/whoami", "allowed_services=sts", "allowed_regions=*",
		"allowed_hosts="+strings.TrimPrefix(w.peer.URL, "http://"), "allowed_actions=sts:GetCallerIdentity")
	for _, c := range []call{
		{method: "GET", url: w.peer.URL + "/?" + gciForm, service: "sts"},
		{method: "POST", url: w.peer.URL + "/", service: "sts", headers: map[string]string{"Content-Type": formType}, body: []byte(gciForm)},
	} {
		if code, out := c.send(t, w.signOK(t, "whoami", c)); code != http.StatusOK || !strings.Contains(out, vaultUserID) {
			t.Fatalf("the peer answered %s %s signed by Vault with %d: %s", c.method, c.url, code, out)
		}
	}
	before := w.peerSeen()
	for _, r := range w.whoamiBypasses() {
		w.refuse(t, "whoami", r)
	}
	if after := w.peerSeen(); after != before {
		t.Fatalf("the STS peer saw %d requests during the refusals", after-before)
	}
}

// peerSeen counts every request the STS peer received, accepted or not.
func (w *world) peerSeen() int { return len(w.peer.Calls()) + w.peer.Refused() }

// whoamiBypasses dress AssumeRole and GetSessionToken up as GetCallerIdentity.
func (w *world) whoamiBypasses() []refusal {
	assume := "Action=AssumeRole&Version=2011-06-15&RoleArn=" + url.QueryEscape(roleARN) + "&RoleSessionName=bypass"
	sum := sha256.Sum256([]byte(assume))
	form := map[string]string{"Content-Type": formType}
	post := func(query string, headers map[string]string, body string) call {
		return call{method: "POST", url: w.peer.URL + "/" + query, service: "sts", headers: headers, body: []byte(body)}
	}
	hidden := post("?"+gciForm, form, "")
	hidden.body, hidden.hash = []byte(assume), hex.EncodeToString(sum[:])
	target := map[string]string{"Content-Type": formType, "X-Amz-Target": "AWSSecurityTokenServiceV20110615.GetCallerIdentity"}
	return []refusal{
		{"X-Amz-Target over an AssumeRole form", post("", target, assume), 403, "action: the request names more than one API action"},
		{"AssumeRole behind payload_hash", hidden, 403, "action: the request's API action cannot be determined: the body is hidden behind payload_hash"},
		{"stray ; without Content-Type", post("", nil, gciForm+";"+assume), 403, "body: the body is not a valid form"},
		{"Action in query and body", post("?"+gciForm, form, assume), 403, "action: the request names more than one API action"},
		{"Action twice in the query", post("?"+gciForm+"&Action=AssumeRole", nil, ""), 403, "action: the request names more than one API action"},
		{"action= in another case", post("?"+gciForm, form, strings.Replace(assume, "Action=", "action=", 1)), 403, "action: an Action parameter in another case"},
		{"GetSessionToken", call{method: "GET", url: w.peer.URL + "/?Action=GetSessionToken&Version=2011-06-15", service: "sts"}, 403, "action: sts:GetSessionToken mints"},
	}
}

// s3Role writes a sign-only role for MinIO's endpoint with the given scope.
func (w *world) s3Role(t *testing.T, name string, scope ...string) {
	args := []string{"write", scopeMount + "/roles/" + name, "allowed_services=s3", "allowed_regions=us-east-1",
		"allowed_hosts=" + strings.TrimPrefix(w.minio.Endpoint, "http://"), "sign_with=key"}
	w.cli(t, append(args, scope...)...)
}

// objectURL is a path-style URL on MinIO.
func (w *world) objectURL(path string) string {
	return w.minio.Endpoint + "/" + w.minio.Bucket + "/" + path
}

// readObject reads an object back through a reader role.
func (w *world) readObject(t *testing.T, key string) string {
	t.Helper()
	c := call{method: "GET", url: w.objectURL(key), service: "s3"}
	code, out := c.send(t, w.signOK(t, "reader", c))
	if code != http.StatusOK {
		t.Fatalf("GetObject %s: %d %s", key, code, out)
	}
	return out
}

// putObject uploads through role; hash, when set, stands for the body.
func (w *world) putObject(t *testing.T, role, key string, body []byte, hash string) {
	t.Helper()
	c := call{method: "PUT", url: w.objectURL(key), service: "s3", body: body, hash: hash,
		headers: map[string]string{"Content-Type": "application/octet-stream"}}
	if code, out := c.send(t, w.signOK(t, role, c)); code != http.StatusOK {
		t.Fatalf("MinIO answered PutObject %s signed for %s with %d: %s", key, role, code, out)
	}
	if got := w.readObject(t, key); got != string(body) {
		t.Fatalf("%s read back %d bytes, not the %d uploaded", key, len(got), len(body))
	}
}

// scopeUpload: uploads under the bucket, with the actions unlimited and
// limited to PutObject; nothing that changes access or leaves the bucket.
func (w *world) scopeUpload(t *testing.T) {
	b := "/" + w.minio.Bucket
	w.s3Role(t, "reader", "allowed_methods=GET", "allowed_paths="+b+"/*", "allowed_actions=s3:GetObject")
	upload := []string{"allowed_methods=PUT", "allowed_paths=" + b + "/*"}
	w.s3Role(t, "upload-any", upload...)
	w.s3Role(t, "upload", append(upload, "allowed_actions=s3:PutObject")...)
	data := make([]byte, 4096)
	_, _ = rand.Read(data)
	for i := range 256 {
		data[i] = byte(i)
	}
	for _, role := range []string{"upload-any", "upload"} {
		w.putObject(t, role, "up/"+role+"-unsigned.bin", data, "UNSIGNED-PAYLOAD")
		w.putObject(t, role, "up/"+role+"-hashed.bin", data, "")
		for _, r := range w.uploadRefusals() {
			w.refuse(t, role, r)
		}
	}
}

// uploadRefusals: bucket configuration, ACLs, another bucket, a query key
// PutObject does not read.
func (w *world) uploadRefusals() []refusal {
	put := func(u string, headers map[string]string, body string) call {
		return call{method: "PUT", url: u, service: "s3", headers: headers, body: []byte(body)}
	}
	xml := map[string]string{"Content-Type": "application/xml"}
	xSum := sha256.Sum256([]byte("x"))
	bucket := w.minio.Endpoint + "/" + w.minio.Bucket + "/"
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + w.minio.Bucket + `/*"}]}`
	return []refusal{
		{"?policy", put(bucket+"?policy", map[string]string{"Content-Type": "application/json"}, policy), 403, "action: s3:PutBucketPolicy mints"},
		{"?acl", put(bucket+"?acl", xml, "<AccessControlPolicy/>"), 403, "action: s3:PutBucketAcl mints"},
		{"?replication", put(bucket+"?replication", xml, "<ReplicationConfiguration/>"), 403, "action: s3:PutBucketReplication mints"},
		{"?lifecycle", put(bucket+"?lifecycle", xml, "<LifecycleConfiguration/>"), 403, "action: s3:PutBucketLifecycleConfiguration mints"},
		{"x-amz-acl", call{method: "PUT", url: w.objectURL("up/acl.bin"), service: "s3", hash: "UNSIGNED-PAYLOAD",
			headers: map[string]string{"x-amz-acl": "public-read"}}, 403, "headers: x-amz-acl and x-amz-grant-* set who may access; the role must list s3:PutObjectAcl"},
		{"another bucket", put(w.minio.Endpoint+"/other-bucket/up/x.bin", map[string]string{"Content-Type": "text/plain"}, "x"), 403, "url: the role may not sign this path"},
		{"?foo", put(w.objectURL("up/x.bin?foo"), map[string]string{"Content-Type": "text/plain"}, "x"), 403, "url: the query has a parameter"},
		// Malformed rather than out of scope: a signed body needs its Content-Type.
		{"body without Content-Type", put(w.objectURL("up/x.bin"), nil, "x"), 400, "headers: Content-Type is required"},
		{"body hash without Content-Type", call{method: "PUT", url: w.objectURL("up/x.bin"), service: "s3",
			hash: hex.EncodeToString(xSum[:])}, 400, "headers: Content-Type is required"},
	}
}

// scopeCopy: CopyObject from an allowed source; a source elsewhere refused.
func (w *world) scopeCopy(t *testing.T) {
	b := "/" + w.minio.Bucket
	w.s3Role(t, "reader", "allowed_methods=GET", "allowed_paths="+b+"/*", "allowed_actions=s3:GetObject")
	w.s3Role(t, "upload", "allowed_methods=PUT", "allowed_paths="+b+"/*", "allowed_actions=s3:PutObject")
	w.s3Role(t, "copy", "allowed_paths="+b+"/src/*,"+b+"/dst/*", "allowed_actions=s3:CopyObject,s3:GetObject")
	data := []byte("copied byte for byte \x00\xff\n")
	w.putObject(t, "upload", "src/orig.bin", data, "")
	w.putObject(t, "upload", "secret/orig.bin", data, "")
	cp := func(src string) call {
		return call{method: "PUT", url: w.objectURL("dst/copy.bin"), service: "s3", headers: map[string]string{"X-Amz-Copy-Source": src}}
	}
	c := cp(b + "/src/orig.bin")
	if code, out := c.send(t, w.signOK(t, "copy", c)); code != http.StatusOK || !strings.Contains(out, "CopyObjectResult") {
		t.Fatalf("MinIO answered the CopyObject Vault signed with %d: %s", code, out)
	}
	if got := w.readObject(t, "dst/copy.bin"); got != string(data) {
		t.Fatalf("the copy holds %q", got)
	}
	for _, r := range []refusal{
		{"copy source in another bucket", cp("/other-bucket/src/orig.bin"), 403, "headers: x-amz-copy-source is outside the role's paths"},
		{"copy source outside the paths", cp(b + "/secret/orig.bin"), 403, "headers: x-amz-copy-source is outside the role's paths"},
		{"copy source encoded outside the paths", cp(url.PathEscape(b + "/secret/orig.bin")), 403, "headers: x-amz-copy-source"},
	} {
		w.refuse(t, "copy", r)
	}
}
