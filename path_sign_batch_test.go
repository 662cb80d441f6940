package awshmac

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// batchPoison marks the values of items that must be refused: none of it may
// reach a response or a log line.
const batchPoison = "POISON-7f3c1e"

const gciQuery = "?Action=GetCallerIdentity&Version=2011-06-15"

// batchCase is one item of a mixed batch and the status it must get.
type batchCase struct {
	name   string
	item   func() any // fresh each time: screening rewrites what it reads
	status int
	single bool // a single call with the same fields exists to compare with
}

// batchCases are accepted, out-of-scope and malformed requests for the
// role "batch" (sts GetCallerIdentity and s3 GetObject on 127.0.0.1).
func batchCases(peerURL string) []batchCase {
	obj := func(kv ...any) func() any {
		return func() any { return with(map[string]any{}, kv...) }
	}
	form := base64.StdEncoding.EncodeToString([]byte(strings.TrimPrefix(gciQuery, "?")))
	s3URL := "http://127.0.0.1:9000/bucket/reports/q3.csv"
	return []batchCase{
		{"presigned GetCallerIdentity", obj("url", peerURL+"/"+gciQuery, "service", "sts", "presign", true, "expires", 300), 200, true},
		{"signed GetCallerIdentity form", obj("method", "POST", "url", peerURL+"/", "service", "sts", "body", form,
			"headers", map[string]any{"Content-Type": "application/x-www-form-urlencoded"}), 200, true},
		{"presigned GetObject", obj("url", s3URL, "service", "s3", "presign", true), 200, true},
		{"signed GetObject", obj("url", s3URL, "service", "s3"), 200, true},
		{"another host", obj("url", "https://"+batchPoison+".example.com/"+gciQuery, "service", "sts"), 403, true},
		{"another region", obj("url", peerURL+"/"+gciQuery, "service", "sts", "region", "us-east-1"), 403, true},
		{"GetSessionToken", obj("url", peerURL+"/?Action=GetSessionToken&Version=2011-06-15&X="+batchPoison, "service", "sts"), 403, true},
		{"another path", obj("url", "http://127.0.0.1:9000/other/"+batchPoison, "service", "s3"), 403, true},
		{"no url", obj("service", "sts"), 400, true},
		{"misspelt field", obj("url", s3URL, "service", "s3", "presgn", true), 400, true},
		{"bad method", obj("method", batchPoison+" X", "url", peerURL+"/", "service", "sts"), 400, true},
		{"user info", obj("url", "http://"+batchPoison+"@127.0.0.1/", "service", "sts"), 400, true},
		{"body not base64", obj("url", peerURL+"/", "service", "sts", "body", "!!"+batchPoison), 400, true},
		{"reserved header", obj("url", s3URL, "service", "s3", "headers", map[string]any{"Authorization": batchPoison}), 400, true},
		{"control character", obj("url", s3URL, "service", "s3", "headers", map[string]any{"X-A": batchPoison + "\r\nX-B: 1"}), 400, true},
		{"url too long", obj("url", s3URL+"?"+strings.Repeat(batchPoison, 1000), "service", "s3"), 400, true},
		{"presign not a boolean", obj("url", s3URL, "service", "s3", "presign", batchPoison), 400, true},
		{"65 header names", obj("url", s3URL, "service", "s3", "headers", manyHeaders(65)), 400, true},
		{"expires without presign", obj("url", s3URL, "service", "s3", "expires", 60), 400, true},
		{"not an object", func() any { return batchPoison }, 400, false},
	}
}

func manyHeaders(n int) map[string]any {
	h := map[string]any{}
	for i := range n {
		h[fmt.Sprintf("X-H%02d", i)] = batchPoison
	}
	return h
}

// TestSignBatchMatchesSingleCalls: each item of a mixed batch gets what the
// same request made alone gets — status and reason, and for an accepted
// one the same signature when made within the same second, accepted by
// the STS peer — and nothing of a refused item reaches a response or a log.
func TestSignBatchMatchesSingleCalls(t *testing.T) {
	e, logs := newLoggedTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/batch", map[string]any{"sign_with": "key", "allowed_services": "sts,s3", "allowed_regions": "eu-west-3",
		"allowed_hosts": "127.0.0.1", "allowed_actions": "sts:GetCallerIdentity,s3:GetObject", "allowed_paths": "/bucket/*,/"})
	cases := batchCases(e.peer.URL)
	for attempt := 0; ; attempt++ {
		batch, singles := e.batchAndSingles(t, cases)
		if !sameSecond(batch, singles) && attempt < 3 {
			continue // a second boundary fell between them: the signatures differ by their dates
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) { e.compareItem(t, c, batch[i], singles[i]) })
		}
		raw, _ := json.Marshal(batch)
		if bytes.Contains(raw, []byte(batchPoison)) {
			t.Errorf("the batch's answer carries a refused item's value: %s", raw)
		}
		break
	}
	if strings.Contains(logs.String(), batchPoison) {
		t.Errorf("the plugin's log carries a refused item's value:\n%s", logs.String())
	}
}

// batchAndSingles makes the cases as one batch, then each alone.
func (e *testEnv) batchAndSingles(t *testing.T, cases []batchCase) ([]map[string]any, []*logical.Response) {
	t.Helper()
	items := make([]any, len(cases))
	for i, c := range cases {
		items[i] = c.item()
	}
	resp := e.mustWrite(t, "sign/batch", map[string]any{"batch_input": items})
	results, _ := resp.Data["batch_results"].([]map[string]any)
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d items: %v", len(results), len(cases), resp.Data)
	}
	singles := make([]*logical.Response, len(cases))
	for i, c := range cases {
		if item, ok := c.item().(map[string]any); ok && c.single {
			r, err := e.request(t, logical.UpdateOperation, "sign/batch", item)
			singles[i] = singleAnswer(r, err)
		}
	}
	return results, singles
}

// singleAnswer folds a single call's error into a response carrying its
// status and reason, as batch_results does.
func singleAnswer(resp *logical.Response, err error) *logical.Response {
	if s := status(resp, err); s != http.StatusOK {
		return &logical.Response{Data: map[string]any{"status": s, "error": errText(resp, err)}}
	}
	resp.Data["status"] = http.StatusOK
	return resp
}

func sameSecond(batch []map[string]any, singles []*logical.Response) bool {
	for i, r := range batch {
		if singles[i] != nil && signedAt(r) != signedAt(singles[i].Data) {
			return false
		}
	}
	return true
}

// signedAt is an answer's X-Amz-Date, from its headers or its URL.
func signedAt(data map[string]any) string {
	if h, ok := data["headers"].(map[string]any); ok && h["X-Amz-Date"] != nil {
		return h["X-Amz-Date"].(string)
	}
	u, _ := url.Parse(fmt.Sprint(data["url"]))
	if u == nil {
		return ""
	}
	return u.Query().Get("X-Amz-Date")
}

func (e *testEnv) compareItem(t *testing.T, c batchCase, got map[string]any, single *logical.Response) {
	if got["status"] != c.status {
		t.Fatalf("status %v, want %d: %v", got["status"], c.status, got["error"])
	}
	if single != nil && !reflect.DeepEqual(got, single.Data) {
		t.Fatalf("the batch answered\n  %v\nthe single call\n  %v", got, single.Data)
	}
	if msg, _ := got["error"].(string); c.status != http.StatusOK && msg == "" {
		t.Fatal("a refusal without its reason")
	}
	if c.status == http.StatusOK && strings.Contains(fmt.Sprint(got["url"]), e.peer.URL) {
		e.sendToPeer(t, c, got)
	}
}

// sendToPeer sends an accepted STS item as signed; the peer checks the
// signature with aws-sdk-go-v2's signer and the secret it holds.
func (e *testEnv) sendToPeer(t *testing.T, c batchCase, got map[string]any) {
	t.Helper()
	item := c.item().(map[string]any)
	var body io.Reader
	if b64, ok := item["body"].(string); ok {
		raw, _ := base64.StdEncoding.DecodeString(b64)
		body = bytes.NewReader(raw)
	}
	method := "GET"
	if m, ok := item["method"].(string); ok {
		method = m
	}
	req, _ := http.NewRequest(method, got["url"].(string), body)
	sent, _ := item["headers"].(map[string]any)
	for k, v := range sent {
		req.Header.Set(k, v.(string))
	}
	for k, v := range got["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte("user/vault")) {
		t.Fatalf("the STS peer answered %d: %s", resp.StatusCode, out)
	}
}

// newLoggedTestEnv is newTestEnv with the backend's log kept, at trace.
func newLoggedTestEnv(t *testing.T) (*testEnv, *lockedBuffer) {
	t.Helper()
	e := newTestEnv(t)
	logs := &lockedBuffer{}
	config := logical.TestBackendConfig()
	config.StorageView, config.System = e.storage, e.sys
	config.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})
	b, err := factory(context.Background(), config, func(name string) string {
		return map[string]string{envAllowInsecure: "1"}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	e.b = b.(*backend)
	return e, logs
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var errStoreDown = errors.New("the HSM is unplugged")

// TestSignBatchLimits: a batch over a limit is refused whole with a 400
// naming it, nothing signed and none of its values quoted; at the limit,
// every item is signed.
func TestSignBatchLimits(t *testing.T) {
	e, logs := newLoggedTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/s3", map[string]any{"sign_with": "key", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "127.0.0.1"})
	item := func(i int) any {
		return map[string]any{"url": fmt.Sprintf("http://127.0.0.1:9000/bucket/%s/%d", batchPoison, i), "service": "s3", "presign": true}
	}
	items := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = item(i)
		}
		return out
	}
	big := strings.Repeat("A", 6<<20) // three of these bodies pass 16 MiB
	bodies := []any{map[string]any{"url": "http://127.0.0.1:9000/b/k", "service": "s3", "body": big},
		map[string]any{"body": big}, map[string]any{"body": big + batchPoison}}
	for _, tt := range []struct {
		name   string
		data   map[string]any
		reason string
	}{
		{"1001 items", map[string]any{"batch_input": items(1001)}, "batch_input: more than 1000 items"},
		{"over 16 MiB", map[string]any{"batch_input": bodies}, "batch_input: more than 16777216 bytes in all"},
		{"not a list", map[string]any{"batch_input": batchPoison}, "batch_input must be a list of objects, each a request's fields"},
		{"empty", map[string]any{"batch_input": []any{}}, "batch_input: give at least one item"},
		{"with a single call's url", map[string]any{"batch_input": items(2), "url": batchPoison}, "batch_input: give batch_input or a single request's fields such as url, not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.request(t, logical.UpdateOperation, "sign/s3", tt.data)
			if status(resp, err) != http.StatusBadRequest || errText(resp, err) != tt.reason {
				t.Fatalf("got %d %q, want 400 %q", status(resp, err), errText(resp, err), tt.reason)
			}
			if raw, _ := json.Marshal(resp); bytes.Contains(raw, []byte(batchPoison)) || resp.Data["batch_results"] != nil {
				t.Fatalf("a refused batch answered more than its reason: %.300s", raw)
			}
		})
	}
	resp := e.mustWrite(t, "sign/s3", map[string]any{"batch_input": items(1000)})
	for i, r := range resp.Data["batch_results"].([]map[string]any) {
		if r["status"] != http.StatusOK || !strings.Contains(r["url"].(string), fmt.Sprintf("/%d?", i)) {
			t.Fatalf("item %d of 1000: %v", i, r)
		}
	}
	if strings.Contains(logs.String(), batchPoison) {
		t.Errorf("the plugin's log carries a refused batch's value")
	}
}

// TestSignBatchOneSession: a sign_with=session role mints its session once
// for a whole batch, and every URL carries it.
func TestSignBatchOneSession(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/whoami", map[string]any{"credential_type": "session_token", "sign_with": "session", "allowed_services": "sts",
		"allowed_regions": "*", "allowed_hosts": "127.0.0.1", "allowed_actions": "sts:GetCallerIdentity"})
	items := make([]any, 5)
	for i := range items {
		items[i] = map[string]any{"url": e.peer.URL + "/" + gciQuery, "service": "sts", "presign": true}
	}
	resp := e.mustWrite(t, "sign/whoami", map[string]any{"batch_input": items})
	for i, r := range resp.Data["batch_results"].([]map[string]any) {
		u, _ := r["url"].(string)
		if r["status"] != http.StatusOK || !strings.Contains(u, "X-Amz-Security-Token=") {
			t.Fatalf("item %d: %v", i, r)
		}
		got, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got.Body.Close()
		if got.StatusCode != http.StatusOK {
			t.Fatalf("the peer answered item %d with %d", i, got.StatusCode)
		}
	}
	mints := 0
	for _, c := range e.peer.Calls() {
		if c.Action == "GetSessionToken" {
			mints++
		}
	}
	if mints != 1 {
		t.Fatalf("%d sessions minted for one batch", mints)
	}
}

// failingKey is a key store that has gone away.
type failingKey struct {
	storeKey
	mu    sync.Mutex
	calls int
}

func (k *failingKey) HMAC(context.Context, []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	return nil, errStoreDown
}

func (k *failingKey) KeyIdentity() string { return "failing" }

// TestSignBatchStoreDown: with the key store gone, each item that would be
// signed gets the 503 a single call gets, the store is asked once and the
// server log says so once; malformed items still get their own 400.
func TestSignBatchStoreDown(t *testing.T) {
	e, logs := newLoggedTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/s3", map[string]any{"sign_with": "key", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "127.0.0.1"})
	key := &failingKey{}
	e.installKey(t, func(k storeKey) storeKey { key.storeKey = k; return key })
	good := map[string]any{"url": "http://127.0.0.1:9000/b/k", "service": "s3"}
	items := []any{good, map[string]any{"url": batchPoison, "service": "s3"}, good, good}
	resp := e.mustWrite(t, "sign/s3", map[string]any{"batch_input": items})
	single, err := e.request(t, logical.UpdateOperation, "sign/s3", good)
	want := map[string]any{"status": status(single, err), "error": errText(single, err)}
	results := resp.Data["batch_results"].([]map[string]any)
	for _, i := range []int{0, 2, 3} {
		if want["status"] != http.StatusServiceUnavailable || !reflect.DeepEqual(results[i], want) {
			t.Fatalf("item %d: %v, alone: %v", i, results[i], want)
		}
	}
	if results[1]["status"] != http.StatusBadRequest || strings.Contains(fmt.Sprint(results[1]), batchPoison) {
		t.Fatalf("the malformed item: %v", results[1])
	}
	if key.calls != 2 || strings.Count(logs.String(), "key store unavailable") != 2 {
		t.Fatalf("the store was asked %d times for a batch and a single call; the log:\n%s", key.calls, logs.String())
	}
	if strings.Contains(logs.String(), batchPoison) {
		t.Errorf("the plugin's log carries a refused item's value")
	}
}

// BenchmarkSignBatchHandler is sign/ with batch_input inside the plugin,
// 100 presigned URLs a call, with the JSON round trip of the gRPC hop.
func BenchmarkSignBatchHandler(b *testing.B) {
	t := &testing.T{}
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/signer", map[string]any{"sign_with": "key", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "*"})
	items := make([]any, 100)
	for i := range items {
		items[i] = map[string]any{"url": fmt.Sprintf("http://127.0.0.1:9000/testbucket/reports/2026/part-%03d.csv", i),
			"service": "s3", "presign": true, "expires": json.Number("900")}
	}
	raw, _ := json.Marshal(map[string]any{"batch_input": items})
	b.ReportAllocs()
	for b.Loop() {
		var data map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			b.Fatal(err)
		}
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "sign/signer", Data: data, Storage: e.storage})
		if err != nil || resp.IsError() {
			b.Fatal(err, resp)
		}
		if _, err := json.Marshal(resp.Data); err != nil {
			b.Fatal(err)
		}
	}
}
