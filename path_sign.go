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
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

const (
	defaultPresignExpiry = 15 * time.Minute
	maxPresignExpiry     = 7 * 24 * time.Hour
	maxSignBody          = 32 << 20
)

var (
	methodRe      = regexp.MustCompile(`^[A-Z]{1,16}$`)
	payloadHashRe = regexp.MustCompile(`^([0-9a-f]{64}|UNSIGNED-PAYLOAD)$`)
	headerNameRe  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// reservedHeaders are set by the signer; a caller may not choose them.
var reservedHeaders = []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "Host", "Content-Length"}

func pathSign(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "sign/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "sign",
			OperationSuffix: "request",
		},
		Fields: map[string]*framework.FieldSchema{
			"name":         {Type: framework.TypeLowerCaseString, Description: "Name of the role whose signing scope applies.", Required: true},
			"method":       {Type: framework.TypeString, Default: "GET", Description: "HTTP method of the request."},
			"url":          {Type: framework.TypeString, Description: "Full URL of the request, e.g. https://bucket.s3.eu-west-3.amazonaws.com/key. Required."},
			"headers":      {Type: framework.TypeMap, Description: "Headers the request will carry, to be signed: name to value (or list of values)."},
			"body":         {Type: framework.TypeString, Description: "Request body, base64; its SHA-256 is signed. Give body or payload_hash, not both."},
			"payload_hash": {Type: framework.TypeString, Description: "Hex SHA-256 of the body, or UNSIGNED-PAYLOAD where the service accepts it (S3)."},
			"service":      {Type: framework.TypeString, Description: "Signing name of the service, e.g. s3, sts, execute-api. Required."},
			"region":       {Type: framework.TypeString, Description: "Region to sign for; default: the config's region."},
			"presign":      {Type: framework.TypeBool, Description: "Return a presigned URL instead of headers."},
			"expires":      {Type: framework.TypeDurationSecond, Description: "Validity of a presigned URL, at most 7 days. Default 15m."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathSignWrite,
				Summary:  "Sign an AWS request with SigV4, within the role's scope.",
				Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: map[string]*framework.FieldSchema{
					"headers":        {Type: framework.TypeMap, Description: "Headers to add to the request (header signing), or signed headers to send with the URL (presigning)."},
					"url":            {Type: framework.TypeString, Description: "The URL to send: the request's URL with its query in canonical order, or the presigned URL."},
					"signed_headers": {Type: framework.TypeString, Description: "The headers covered by the signature."},
					"expiration":     {Type: framework.TypeString, Description: "When a presigned URL stops working, RFC 3339."},
				}}}},
			},
		},
		HelpSynopsis:    pathSignHelpSyn,
		HelpDescription: pathSignHelpDesc,
	}
}

// matchScope reports whether value is allowed by a role's list: exact, "*",
// or for hosts "*.domain" matching any subdomain.
func matchScope(allowed []string, value string) bool {
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, value) {
			return true
		}
		if suffix, ok := strings.CutPrefix(a, "*"); ok && strings.HasPrefix(suffix, ".") && strings.HasSuffix(strings.ToLower(value), strings.ToLower(suffix)) {
			return true
		}
	}
	return false
}

// forbidden refuses a request outside the role's scope with a 403 and the reason.
func forbidden(_ *logical.Request, format string, args ...any) (*logical.Response, error) {
	return nil, logical.CodedError(http.StatusForbidden, fmt.Sprintf(format, args...))
}

func (b *backend) pathSignWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, resp, err := roleOrError(ctx, req.Storage, name)
	if role == nil {
		return resp, err
	}
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse(errNotConfigured.Error()), nil
	}

	method := strings.ToUpper(strings.TrimSpace(d.Get("method").(string)))
	if !methodRe.MatchString(method) {
		return logical.ErrorResponse("method %q is not an HTTP method", method), nil
	}
	rawURL := strings.TrimSpace(d.Get("url").(string))
	if rawURL == "" {
		return logical.ErrorResponse("url is required"), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return logical.ErrorResponse("url must be an absolute http or https URL without user info or fragment"), nil
	}
	service := strings.TrimSpace(d.Get("service").(string))
	if service == "" {
		return logical.ErrorResponse("service is required (the signing name, e.g. s3)"), nil
	}
	if !serviceRe.MatchString(service) || strings.Contains(service, "*") {
		return logical.ErrorResponse("service %q is not a service signing name", service), nil
	}
	region := strings.TrimSpace(d.Get("region").(string))
	if region == "" {
		region = cfg.Region
	}
	if !regionRe.MatchString(region) {
		return logical.ErrorResponse("region %q is not an AWS region name", region), nil
	}

	// The role's scope: nothing outside it is signed.
	switch {
	case !matchScope(role.AllowedServices, service):
		return forbidden(req, "service: role %q may not sign for service %q (allowed_services: %s)", name, service, listOrNone(role.AllowedServices))
	case !matchScope(role.AllowedRegions, region):
		return forbidden(req, "region: role %q may not sign for region %q (allowed_regions: %s)", name, region, listOrNone(role.AllowedRegions))
	case !matchScope(role.AllowedHosts, u.Host) && !matchScope(role.AllowedHosts, u.Hostname()):
		return forbidden(req, "url: role %q may not sign for host %q (allowed_hosts: %s)", name, u.Host, listOrNone(role.AllowedHosts))
	}

	presign := d.Get("presign").(bool)
	expires := defaultPresignExpiry
	if v, ok := d.GetOk("expires"); ok {
		if !presign {
			return logical.ErrorResponse("expires applies only with presign=true"), nil
		}
		expires = time.Duration(v.(int)) * time.Second
	}
	if expires < time.Second || expires > maxPresignExpiry {
		return logical.ErrorResponse("expires must be between 1s and 7 days"), nil
	}

	header := http.Header{}
	if raw, ok := d.GetOk("headers"); ok {
		for k, v := range raw.(map[string]any) {
			if !headerNameRe.MatchString(k) {
				return logical.ErrorResponse("headers: %q is not a valid header name", k), nil
			}
			if slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, k) }) {
				return logical.ErrorResponse("headers: %s is set by the signer and may not be given", k), nil
			}
			values, err := headerValues(v)
			if err != nil {
				return logical.ErrorResponse("headers: %s: %s", k, err), nil
			}
			for _, hv := range values {
				header.Add(k, hv)
			}
		}
	}

	s3 := service == "s3"
	var body []byte
	payloadHash := strings.TrimSpace(d.Get("payload_hash").(string))
	if b64, ok := d.GetOk("body"); ok {
		if payloadHash != "" {
			return logical.ErrorResponse("give body or payload_hash, not both"), nil
		}
		body, err = base64.StdEncoding.DecodeString(b64.(string))
		if err != nil {
			return logical.ErrorResponse("body must be base64"), nil
		}
		if len(body) > maxSignBody {
			return logical.ErrorResponse("body is larger than 32 MiB; give payload_hash instead"), nil
		}
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	switch {
	case payloadHash == "" && presign && s3:
		payloadHash = sigv4.UnsignedPayload
	case payloadHash == "":
		payloadHash = sigv4.EmptyStringSHA256
	case !payloadHashRe.MatchString(payloadHash):
		return logical.ErrorResponse("payload_hash must be 64 lower-case hex digits or UNSIGNED-PAYLOAD"), nil
	}

	httpReq := &http.Request{Method: method, URL: u, Host: u.Host, Header: header, ContentLength: int64(len(body))}
	if s3 && !presign {
		httpReq.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	if presign {
		q := u.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
		u.RawQuery = q.Encode()
	}

	key, signer, _, err := b.client(ctx, req.Storage)
	if err != nil {
		return keyStoreResponse(req, err)
	}
	// The server's clock: the key store is asked only for today's date.
	now := time.Now().UTC()
	opts := func(o *sigv4.SignerOptions) { o.DisableURIPathEscaping = s3 }

	if presign {
		signedURL, signed, err := signer.PresignHTTP(ctx, key, httpReq, payloadHash, service, region, now, opts)
		if err != nil {
			return keyStoreResponse(req, err)
		}
		out := map[string]any{}
		for k, v := range signed {
			if k != "Host" {
				out[k] = strings.Join(v, ",")
			}
		}
		return &logical.Response{Data: map[string]any{
			"url":            signedURL,
			"headers":        out,
			"signed_headers": signedHeaderNames(signed),
			"expiration":     now.Add(expires).Format(time.RFC3339),
		}}, nil
	}
	if err := signer.SignHTTP(ctx, key, httpReq, payloadHash, service, region, now, opts); err != nil {
		return keyStoreResponse(req, err)
	}
	out := map[string]any{
		"Authorization": httpReq.Header.Get("Authorization"),
		"X-Amz-Date":    httpReq.Header.Get("X-Amz-Date"),
	}
	if s3 {
		out["X-Amz-Content-Sha256"] = payloadHash
	}
	auth := httpReq.Header.Get("Authorization")
	signedNames := auth[strings.Index(auth, "SignedHeaders=")+len("SignedHeaders="):]
	signedNames = signedNames[:strings.IndexByte(signedNames, ',')]
	return &logical.Response{Data: map[string]any{
		"url":            httpReq.URL.String(),
		"headers":        out,
		"signed_headers": signedNames,
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

func signedHeaderNames(h http.Header) string {
	var names []string
	for k := range h {
		names = append(names, strings.ToLower(k))
	}
	sort.Strings(names)
	return strings.Join(names, ";")
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

const pathSignHelpSyn = `Sign an AWS request with SigV4, within the role's signing scope.`

const pathSignHelpDesc = `
Describe a request (method, url, headers, body or payload_hash, service,
region) and get back the headers to add (Authorization, X-Amz-Date, and
X-Amz-Content-Sha256 for S3) or, with presign=true, a presigned URL valid for
expires (at most 7 days). The request is signed with the server's clock and
the configured key; the caller never holds a credential.

The role's allowed_services, allowed_regions and allowed_hosts bound what may
be signed; a request outside them is refused with 403 and the reason.
`
