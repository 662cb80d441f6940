// Package vaultsign has a Vault mount of vault-plugin-aws-hmac sign AWS
// requests: many at a time through sign/'s batch_input, each signed within
// the role's scope. The application holds no AWS credential.
//
// Vault's types stay here, out of hmac, sigv4 and stscreds.
package vaultsign

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// MaxBatch is the most items the engine takes in one call; longer lists
// are sent in several.
const MaxBatch = 1000

// maxBatchBytes keeps each call well inside the engine's 16 MiB.
const maxBatchBytes = 8 << 20

// Client signs through the engine mounted at Mount (default aws-hmac).
type Client struct {
	Vault *api.Client
	Mount string
}

// Request is one request to sign: sign/'s fields.
type Request struct {
	Method      string              // default GET
	URL         string              // absolute http or https URL
	Headers     map[string][]string // headers the request will carry, signed
	Body        []byte              // signed by its SHA-256; or give PayloadHash
	PayloadHash string              // hex SHA-256, or UNSIGNED-PAYLOAD
	Service     string              // signing name: s3, sts, ...
	Region      string              // default: the engine's region
	Presign     bool                // a presigned URL rather than headers
	Expires     time.Duration       // a presigned URL's life; default 15m
}

// Result answers one Request: what to send, or why Vault refused it.
type Result struct {
	URL           string            // the URL to send: presigned, or in canonical order
	Headers       map[string]string // headers to add
	SignedHeaders string
	Expiration    time.Time // when a presigned URL stops working
	Err           error     // an *ItemError when Vault refused this request
}

// ItemError is Vault's refusal of one request: the HTTP status it would
// have had alone (400 malformed, 403 out of the role's scope, 503 the key
// store) and the reason.
type ItemError struct {
	Index  int
	Status int
	Reason string
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("request %d: %d %s", e.Index+1, e.Status, e.Reason)
}

// SignBatch signs reqs as role; results[i] answers reqs[i]. The error is
// for the calls themselves (Vault unreachable, a batch refused whole); one
// request refused is only that Result's Err.
func (c *Client) SignBatch(ctx context.Context, role string, reqs []Request) ([]Result, error) {
	results := make([]Result, 0, len(reqs))
	for start := 0; start < len(reqs); {
		end := chunkEnd(reqs, start)
		got, err := c.call(ctx, role, reqs[start:end])
		if err != nil {
			return results, err
		}
		for i := range got {
			if ie, ok := got[i].Err.(*ItemError); ok {
				ie.Index += start
			}
		}
		results, start = append(results, got...), end
	}
	return results, nil
}

// PresignMany presigns one request per URL, all alike but for the URL:
// method (default GET), service, region and expires from tmpl.
func (c *Client) PresignMany(ctx context.Context, role string, urls []string, tmpl Request) ([]Result, error) {
	reqs := make([]Request, len(urls))
	for i, u := range urls {
		reqs[i] = tmpl
		reqs[i].URL, reqs[i].Presign = u, true
	}
	return c.SignBatch(ctx, role, reqs)
}

// chunkEnd ends a call at MaxBatch requests or about maxBatchBytes.
func chunkEnd(reqs []Request, start int) int {
	size, end := 0, start
	for end < len(reqs) && end-start < MaxBatch {
		r := reqs[end]
		size += len(r.URL) + len(r.Body)*4/3 + len(r.PayloadHash) + 64
		for k, vs := range r.Headers {
			size += len(k) + len(strings.Join(vs, ""))
		}
		if end > start && size > maxBatchBytes {
			break
		}
		end++
	}
	return end
}

func (c *Client) call(ctx context.Context, role string, reqs []Request) ([]Result, error) {
	items := make([]any, len(reqs))
	for i, r := range reqs {
		items[i] = r.fields()
	}
	mount := c.Mount
	if mount == "" {
		mount = "aws-hmac"
	}
	path := mount + "/sign/" + role
	s, err := c.Vault.Logical().WriteWithContext(ctx, path, map[string]any{"batch_input": items})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw []any
	if s != nil {
		raw, _ = s.Data["batch_results"].([]any)
	}
	if len(raw) != len(reqs) {
		return nil, fmt.Errorf("%s: %d results for %d requests", path, len(raw), len(reqs))
	}
	results := make([]Result, len(raw))
	for i, r := range raw {
		results[i] = parseResult(i, r)
	}
	return results, nil
}

func (r Request) fields() map[string]any {
	f := map[string]any{"url": r.URL, "service": r.Service}
	set := func(name string, v any, ok bool) {
		if ok {
			f[name] = v
		}
	}
	set("method", r.Method, r.Method != "")
	set("region", r.Region, r.Region != "")
	set("presign", true, r.Presign)
	set("expires", int(r.Expires/time.Second), r.Expires > 0)
	set("payload_hash", r.PayloadHash, r.PayloadHash != "")
	set("body", base64.StdEncoding.EncodeToString(r.Body), r.Body != nil)
	if len(r.Headers) > 0 {
		h := map[string]any{}
		for k, vs := range r.Headers {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			h[k] = list
		}
		f["headers"] = h
	}
	return f
}

// parseResult reads one of batch_results.
func parseResult(i int, raw any) Result {
	m, _ := raw.(map[string]any)
	status := 0
	switch n := m["status"].(type) {
	case json.Number:
		v, _ := n.Int64()
		status = int(v)
	case float64:
		status = int(n)
	}
	if status != 200 {
		reason, _ := m["error"].(string)
		if reason == "" {
			reason = "no reason given"
		}
		return Result{Err: &ItemError{Index: i, Status: status, Reason: reason}}
	}
	r := Result{Headers: map[string]string{}}
	r.URL, _ = m["url"].(string)
	r.SignedHeaders, _ = m["signed_headers"].(string)
	if exp, ok := m["expiration"].(string); ok {
		r.Expiration, _ = time.Parse(time.RFC3339, exp)
	}
	headers, _ := m["headers"].(map[string]any)
	for k, v := range headers {
		r.Headers[k] = fmt.Sprint(v)
	}
	if r.URL == "" {
		r.Err = &ItemError{Index: i, Status: status, Reason: "the answer has no url"}
	}
	return r
}

// Failed are the results Vault refused, in order.
func Failed(results []Result) []*ItemError {
	var out []*ItemError
	for _, r := range results {
		var ie *ItemError
		if errors.As(r.Err, &ie) {
			out = append(out, ie)
		}
	}
	return out
}
