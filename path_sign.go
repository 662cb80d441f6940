package awshmac

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/scope"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

const (
	defaultPresignExpiry = 15 * time.Minute
	maxPresignExpiry     = 7 * 24 * time.Hour
	maxSignBody          = 32 << 20
)

var (
	methodRe      = regexp.MustCompile(`^[A-Z]{1,16}$`)
	payloadHashRe = regexp.MustCompile(`^([0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-UNSIGNED-PAYLOAD-TRAILER)$`)
	decimalRe     = regexp.MustCompile(`^[0-9]{1,19}$`)
	headerNameRe  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// reservedHeaders are set by the signer; a caller may not choose them (nor
// any of SigV4's own parameters, authParams).
var reservedHeaders = []string{"Authorization", "X-Amz-Content-Sha256", "Host", "Content-Length"}

func pathSign(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "sign/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "sign",
			OperationSuffix: "request",
		},
		Fields: map[string]*framework.FieldSchema{
			"name":         {Type: framework.TypeString, Description: "Name of the role whose signing scope applies, exactly as written.", Required: true},
			"method":       {Type: framework.TypeString, Default: "GET", Description: "HTTP method of the request."},
			"url":          {Type: framework.TypeString, Description: "Full URL of the request, e.g. https://bucket.s3.eu-west-3.amazonaws.com/key. Required."},
			"headers":      {Type: framework.TypeMap, Description: "Headers the request will carry, to be signed: name to value (or list of values)."},
			"body":         {Type: framework.TypeString, Description: "Request body, base64; its SHA-256 is signed. Give body or payload_hash, not both."},
			"payload_hash": {Type: framework.TypeString, Description: "Hex SHA-256 of the body, UNSIGNED-PAYLOAD where the service accepts it (S3), or for S3 STREAMING-UNSIGNED-PAYLOAD-TRAILER (an aws-chunked upload: x-amz-trailer, x-amz-decoded-content-length and content-encoding aws-chunked among the headers)."},
			"service":      {Type: framework.TypeString, Description: "Signing name of the service, e.g. s3, sts, execute-api. Required."},
			"region":       {Type: framework.TypeString, Description: "Region to sign for; default: the config's region."},
			"presign":      {Type: framework.TypeBool, Description: "Return a presigned URL instead of headers."},
			"expires":      {Type: framework.TypeDurationSecond, Description: "Validity of a presigned URL, at most 7 days. Default 15m."},
			"batch_input":  batchInputField,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:  b.pathSignWrite,
				Summary:   "Sign an AWS request with SigV4, within the role's scope.",
				Responses: signResponses,
			},
		},
		HelpSynopsis:    pathSignHelpSyn,
		HelpDescription: pathSignHelpDesc,
	}
}

var signResponses = map[int][]framework.Response{http.StatusOK: {{
	Description: "OK",
	Fields: map[string]*framework.FieldSchema{
		"headers":        {Type: framework.TypeMap, Description: "Headers to add to the request (header signing), or signed headers to send with the URL (presigning)."},
		"url":            {Type: framework.TypeString, Description: "The URL to send: the request's URL with its query in canonical order, or the presigned URL."},
		"signed_headers": {Type: framework.TypeString, Description: "The headers covered by the signature."},
		"expiration":     {Type: framework.TypeString, Description: "When a presigned URL stops working, RFC 3339."},
		"batch_results":  batchResultsField,
	},
}}}

// signRequest is a parsed sign/ request.
type signRequest struct {
	method      string
	url         *url.URL
	header      http.Header
	bodyLen     int64
	payloadHash string
	service     string
	region      string
	presign     bool
	expires     time.Duration
	body        []byte

	query url.Values // the URL's query, parsed once
}

func (b *backend) pathSignWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if _, batch := d.Raw["batch_input"]; batch {
		return b.pathSignBatch(ctx, req, d)
	}
	name := d.Get("name").(string)
	role, cfg, err := b.signRole(ctx, req.Storage, name)
	if err != nil {
		return b.respond(nil, err)
	}
	in, err := parseSignRequest(d, cfg.Region)
	if err != nil {
		return b.respond(nil, err)
	}
	if err = in.authorise(role); err != nil {
		return b.respond(nil, err)
	}
	var resp *logical.Response
	err = b.withEngine(ctx, req.Storage, func(e *engine) error {
		resp, err = (&signing{e: e, name: name, role: role}).sign(ctx, in)
		return err
	})
	return b.respond(resp, err)
}

// signRole is the role a sign/ call names and the config it signs with.
func (b *backend) signRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, *pluginConfig, error) {
	role, err := b.existingRole(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := b.config(ctx, s)
	if err == nil && cfg == nil {
		err = errNotConfigured
	}
	return role, cfg, err
}

func parseSignRequest(d *framework.FieldData, defaultRegion string) (*signRequest, error) {
	in := &signRequest{}
	for _, parse := range []func(*framework.FieldData) error{in.parseTarget, in.parseHeaders, in.parsePayload, in.parseExpiry} {
		if err := parse(d); err != nil {
			return nil, err
		}
	}
	if in.region == "" {
		in.region = defaultRegion
	}
	if !regionRe.MatchString(in.region) {
		return nil, badInput("region is not an AWS region name like eu-west-3")
	}
	if err := in.refuseAuthParams(); err != nil {
		return nil, err
	}
	return in, nil
}

// parseTarget reads method, url, service and region.
func (in *signRequest) parseTarget(d *framework.FieldData) error {
	in.method = strings.ToUpper(strings.TrimSpace(d.Get("method").(string)))
	if !methodRe.MatchString(in.method) {
		return badInput("method is not an HTTP method such as GET or PUT")
	}
	rawURL := strings.TrimSpace(d.Get("url").(string))
	if rawURL == "" {
		return badInput("url is required")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return badInput("url must be an absolute http or https URL without user info or fragment")
	}
	in.url = u
	if in.query, err = url.ParseQuery(u.RawQuery); err != nil {
		return badInput("url: the query string is malformed")
	}
	in.service = strings.TrimSpace(d.Get("service").(string))
	if in.service == "" {
		return badInput("service is required (the signing name, e.g. s3)")
	}
	if !serviceRe.MatchString(in.service) || strings.Contains(in.service, "*") {
		return badInput("service is not a service signing name such as s3 or sts")
	}
	in.region = strings.TrimSpace(d.Get("region").(string))
	return nil
}

func (in *signRequest) parseHeaders(d *framework.FieldData) error {
	in.header = http.Header{}
	raw, ok := d.GetOk("headers")
	if !ok {
		return nil
	}
	for k, v := range raw.(map[string]any) {
		if !headerNameRe.MatchString(k) {
			return badInput("headers: a name is not a valid header name")
		}
		if name := reservedName(k); name != "" {
			return badInput("headers: %s is set by the signer and may not be given", name)
		}
		values, err := headerValues(v)
		if err != nil {
			return badInput("headers: %s", err)
		}
		for _, hv := range values {
			if strings.ContainsFunc(hv, isControl) {
				return badInput("headers: a value has a control character")
			}
			in.header.Add(k, hv)
		}
	}
	return nil
}

// parsePayload reads body or payload_hash; presign needs presign parsed.
func (in *signRequest) parsePayload(d *framework.FieldData) error {
	in.presign = d.Get("presign").(bool)
	in.payloadHash = strings.TrimSpace(d.Get("payload_hash").(string))
	if b64, ok := d.GetOk("body"); ok {
		if in.payloadHash != "" {
			return badInput("give body or payload_hash, not both")
		}
		body, err := base64.StdEncoding.DecodeString(b64.(string))
		if err != nil {
			return badInput("body must be base64")
		}
		if len(body) > maxSignBody {
			return badInput("body is larger than 32 MiB; give payload_hash instead")
		}
		sum := sha256.Sum256(body)
		in.payloadHash = hex.EncodeToString(sum[:])
		in.bodyLen = int64(len(body))
		in.body = body
	}
	switch {
	case in.payloadHash == "" && in.presign && in.s3():
		in.payloadHash = sigv4.UnsignedPayload
	case in.payloadHash == "":
		in.payloadHash = sigv4.EmptyStringSHA256
	case !payloadHashRe.MatchString(in.payloadHash):
		return badInput("payload_hash must be 64 lower-case hex digits, UNSIGNED-PAYLOAD or (S3) STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	case in.payloadHash == streamingUnsignedTrailer:
		return in.checkStreaming()
	}
	return nil
}

// streamingUnsignedTrailer is S3's aws-chunked upload with unsigned chunks
// and a trailing checksum, as SDKs send over TLS.
const streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

// checkStreaming: S3 alone reads aws-chunked bodies, and only the headers
// that say how to decode one are signed with it, so nobody can send the
// body another way. The body stays unsigned, as with UNSIGNED-PAYLOAD.
func (in *signRequest) checkStreaming() error {
	const mode = "with payload_hash " + streamingUnsignedTrailer
	trailer := in.header.Values("X-Amz-Trailer")
	decoded := in.header.Values("X-Amz-Decoded-Content-Length")
	switch {
	case !in.s3():
		return badInput("payload_hash: %s is for S3 only (service s3)", streamingUnsignedTrailer)
	case in.presign:
		return badInput("payload_hash: %s cannot be presigned", streamingUnsignedTrailer)
	case len(trailer) != 1 || !strings.HasPrefix(strings.ToLower(trailer[0]), "x-amz-checksum-"):
		return badInput("headers: x-amz-trailer, one x-amz-checksum-* name, is required %s", mode)
	case len(decoded) != 1 || !decimalRe.MatchString(decoded[0]):
		return badInput("headers: x-amz-decoded-content-length, one decimal byte count, is required %s", mode)
	case !hasToken(in.header.Values("Content-Encoding"), "aws-chunked"):
		return badInput("headers: content-encoding containing aws-chunked is required %s", mode)
	}
	return nil
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (in *signRequest) parseExpiry(d *framework.FieldData) error {
	in.expires = defaultPresignExpiry
	if v, ok := d.GetOk("expires"); ok {
		if !in.presign {
			return badInput("expires applies only with presign=true")
		}
		in.expires = time.Duration(v.(int)) * time.Second
	}
	if in.expires < time.Second || in.expires > maxPresignExpiry {
		return badInput("expires must be between 1s and 7 days")
	}
	return nil
}

func (in *signRequest) s3() bool { return in.service == "s3" }

// authorise asks the role's scope whether it may sign the request.
func (in *signRequest) authorise(role *roleEntry) error {
	_, err := role.policy().Check(&scope.Request{
		Method: in.method, URL: in.url, Query: in.query, Header: in.header, Body: in.body, PayloadHash: in.payloadHash,
		Service: in.service, Region: in.region, Presign: in.presign, Expires: in.expires,
	})
	return scopeErr(err)
}

// sign signs with the server's clock: the key store is asked only for
// today's date.
// A session token, when given, is signed too: X-Amz-Security-Token.
func (e *engine) sign(ctx context.Context, in *signRequest, key hmac.Key, token string) (*logical.Response, error) {
	httpReq := &http.Request{Method: in.method, URL: in.url, Host: in.url.Host, Header: in.header, ContentLength: in.bodyLen}
	if in.s3() && !in.presign {
		httpReq.Header.Set("X-Amz-Content-Sha256", in.payloadHash)
	}
	if in.presign {
		in.query.Set("X-Amz-Expires", strconv.Itoa(int(in.expires/time.Second)))
		in.url.RawQuery = in.query.Encode()
	}
	now := time.Now().UTC()
	opts := func(o *sigv4.SignerOptions) { o.DisableURIPathEscaping, o.SessionToken = in.s3(), token }
	if in.presign {
		signed, err := e.signer.PresignRequest(ctx, key, httpReq, in.payloadHash, in.service, in.region, now, opts)
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		for k, v := range signed.Header {
			if k != "Host" {
				out[k] = strings.Join(v, ",")
			}
		}
		return &logical.Response{Data: map[string]any{
			"url":            signed.URL,
			"headers":        out,
			"signed_headers": signed.SignedHeaders,
			"expiration":     now.Add(in.expires).Format(time.RFC3339),
		}}, nil
	}
	signed, err := e.signer.SignRequest(ctx, key, httpReq, in.payloadHash, in.service, in.region, now, opts)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"Authorization": httpReq.Header.Get("Authorization"),
		"X-Amz-Date":    httpReq.Header.Get("X-Amz-Date"),
	}
	if in.s3() {
		out["X-Amz-Content-Sha256"] = in.payloadHash
	}
	if token != "" {
		out["X-Amz-Security-Token"] = token
	}
	return &logical.Response{Data: map[string]any{
		"url":            signed.URL,
		"headers":        out,
		"signed_headers": signed.SignedHeaders,
	}}, nil
}

func headerValues(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case []any:
		var out []string
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("values must be strings")
			}
			out = append(out, s)
		}
		return out, nil
	case float64, bool, int:
		return []string{fmt.Sprint(t)}, nil
	}
	return nil, fmt.Errorf("values must be strings")
}

// isControl matches what may not appear in a header value: control
// characters other than tab, which could split or forge headers downstream.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || r == 0x7f
}

const pathSignHelpSyn = `Sign an AWS request with SigV4, within the role's signing scope.`

const pathSignHelpDesc = `
Describe a request (method, url, headers, body or payload_hash, service,
region) and get back the headers to add (Authorization, X-Amz-Date, and
X-Amz-Content-Sha256 for S3) or, with presign=true, a presigned URL valid for
expires (at most 7 days, or the role's max_presign_expires). The request is
signed with the server's clock and the configured key (or, for a role with
sign_with=session, the role's own STS session); the caller never holds a
credential.

The role's scope bounds what may be signed: services, regions, hosts,
schemes, methods, paths and operations. The operation is read from the
request the way the service's own protocol reads it (AWS's service models:
the Query protocol's Action in the query and the whole body, JSON's
X-Amz-Target, REST's method, path and subresource), and a request the scope
cannot place is refused when the role limits operations. Operations that mint
credentials or change access are signed only when the role lists them
exactly. SigV4's own parameters may not be given in headers or in the query;
a signed body needs its Content-Type; x-amz-copy-source must name an object
within the same scope. A request outside the scope is refused with 403 and
the reason; malformed input with 400 naming the field.

batch_input takes many requests in one call, a list of objects with the
fields above, and answers batch_results in the same order: each item is
screened, judged and signed as it would be alone, and carries status 200 and
that call's fields, or the status and reason it alone would have had; one bad
item never fails the others. More than 1000 items, or 16 MiB in all, is
refused whole with a 400 naming the limit.
`
