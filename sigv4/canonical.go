package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	amzAlgorithmKey     = "X-Amz-Algorithm"
	amzCredentialKey    = "X-Amz-Credential"
	amzDateKey          = "X-Amz-Date"
	amzSecurityTokenKey = "X-Amz-Security-Token"
	amzSignedHeadersKey = "X-Amz-SignedHeaders"
	authorizationHeader = "Authorization"
)

// canonicalHeader is one signed header: its lower-case name and values.
type canonicalHeader struct {
	name   string
	values []string
}

// canonicalizer builds the canonical request and the signature for one
// request, following aws-sdk-go-v2's httpSigner.Build step for step.
type canonicalizer struct {
	req         *http.Request
	accessKeyID string
	service     string
	region      string
	amzDate     string
	shortDate   string
	payloadHash string
	presign     bool
	opts        *SignerOptions
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// signedParts is what one build signed.
type signedParts struct {
	headers     []canonicalHeader
	signedNames string
	canonical   string // the canonical request, when asked for
}

// build signs the request in place: the SDK's Build, in small steps.
func (c *canonicalizer) build(signingKey []byte, keepCanonical bool) signedParts {
	query := c.setAuthParams()
	scope := c.shortDate + "/" + c.region + "/" + c.service + "/aws4_request"
	credential := c.accessKeyID + "/" + scope
	if c.presign {
		query.Set(amzCredentialKey, credential)
	}
	unsigned := c.req.Header
	if c.presign && !c.opts.DisableHeaderHoisting {
		unsigned = hoistHeaders(unsigned, query)
	}
	host := c.req.URL.Host
	if c.req.Host != "" {
		host = c.req.Host
	}
	signed, signedNames := canonicalHeaders(host, unsigned, c.req.ContentLength)
	if c.presign {
		query.Set(amzSignedHeadersKey, signedNames)
	}

	bp := bufPool.Get().(*[]byte)
	buf, rawQuery := c.appendCanonicalRequest((*bp)[:0], query, signed, signedNames, host)
	parts := signedParts{headers: signed, signedNames: signedNames}
	if keepCanonical {
		parts.canonical = string(buf)
	}
	canonicalHash := sha256.Sum256(buf)
	buf = c.appendStringToSign(buf[:0], scope, canonicalHash[:])
	mac := hmac.New(sha256.New, signingKey)
	mac.Write(buf)
	var sum [sha256.Size]byte
	signature := hex.EncodeToString(mac.Sum(sum[:0]))
	*bp = buf
	bufPool.Put(bp)

	if c.presign {
		rawQuery += "&X-Amz-Signature=" + signature
	} else {
		c.req.Header[authorizationHeader] = append(c.req.Header[authorizationHeader][:0],
			signingAlgorithm+" Credential="+credential+", SignedHeaders="+signedNames+", Signature="+signature)
	}
	c.req.URL.RawQuery = rawQuery
	return parts
}

// setAuthParams puts the date, algorithm and session token where the
// signature mode wants them, and returns the query to sign.
func (c *canonicalizer) setAuthParams() url.Values {
	req := c.req
	if req.Header == nil {
		req.Header = http.Header{}
	}
	var query url.Values
	if c.presign || req.URL.RawQuery != "" {
		query = req.URL.Query()
	}
	token := c.opts.SessionToken
	if c.opts.DisableSessionToken {
		token = ""
	}
	if c.presign {
		query.Set(amzAlgorithmKey, signingAlgorithm)
		if token != "" {
			query.Set(amzSecurityTokenKey, token)
		}
		query.Set(amzDateKey, c.amzDate)
	} else {
		req.Header[amzDateKey] = append(req.Header[amzDateKey][:0], c.amzDate)
		if token != "" {
			req.Header[amzSecurityTokenKey] = append(req.Header[amzSecurityTokenKey][:0], token)
		}
	}
	sanitizeHostForHeader(req)
	return query
}

// appendCanonicalRequest appends the canonical request and returns it with
// the canonical query string.
func (c *canonicalizer) appendCanonicalRequest(buf []byte, query url.Values, signed []canonicalHeader, signedNames, host string) ([]byte, string) {
	buf = append(buf, c.req.Method...)
	buf = append(buf, '\n')
	path := uriPath(c.req.URL)
	if c.opts.DisableURIPathEscaping {
		buf = append(buf, path...)
	} else {
		buf = appendEscapedPath(buf, path)
	}
	buf = append(buf, '\n')
	queryStart := len(buf)
	buf = appendCanonicalQuery(buf, query)
	rawQuery := string(buf[queryStart:])
	buf = append(buf, '\n')
	for _, h := range signed {
		buf = append(buf, h.name...)
		buf = append(buf, ':')
		if h.name == "host" {
			buf = appendStripExcessSpaces(buf, host)
		} else {
			for i, v := range h.values {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendStripExcessSpaces(buf, strings.TrimSpace(v))
			}
		}
		buf = append(buf, '\n')
	}
	buf = append(buf, '\n')
	buf = append(buf, signedNames...)
	buf = append(buf, '\n')
	buf = append(buf, c.payloadHash...)
	return buf, rawQuery
}

func (c *canonicalizer) appendStringToSign(buf []byte, scope string, canonicalHash []byte) []byte {
	buf = append(buf, signingAlgorithm...)
	buf = append(buf, '\n')
	buf = append(buf, c.amzDate...)
	buf = append(buf, '\n')
	buf = append(buf, scope...)
	buf = append(buf, '\n')
	return hex.AppendEncode(buf, canonicalHash)
}

// canonicalHeaders returns the signed headers sorted by lower-case name and
// the SignedHeaders value. Host and a positive Content-Length are always
// signed; the SDK's ignored headers never are.
func canonicalHeaders(host string, header http.Header, contentLength int64) ([]canonicalHeader, string) {
	signed := make([]canonicalHeader, 0, len(header)+2)
	signed = append(signed, canonicalHeader{name: "host", values: []string{host}})
	if contentLength > 0 {
		signed = append(signed, canonicalHeader{name: "content-length", values: []string{strconv.FormatInt(contentLength, 10)}})
	}
	// A map, not a search per header: the work stays linear in the header count.
	index := make(map[string]int, len(header)+2)
	for i, h := range signed {
		index[h.name] = i
	}
	for k, v := range header {
		if isIgnoredHeader(k) || strings.EqualFold(k, "Content-Length") {
			continue
		}
		name := lowerHeaderName(k)
		if i, ok := index[name]; ok {
			// Same name in another case: its values join the first one's.
			signed[i].values = append(slices.Clip(signed[i].values), v...)
			continue
		}
		index[name] = len(signed)
		signed = append(signed, canonicalHeader{name: name, values: v})
	}
	slices.SortFunc(signed, func(a, b canonicalHeader) int { return strings.Compare(a.name, b.name) })

	n := len(signed) - 1
	for _, h := range signed {
		n += len(h.name)
	}
	var names strings.Builder
	names.Grow(n)
	for i, h := range signed {
		if i > 0 {
			names.WriteByte(';')
		}
		names.WriteString(h.name)
	}
	return signed, names.String()
}

// isIgnoredHeader matches the SDK's IgnoredHeaders: exact, case-sensitive keys.
func isIgnoredHeader(k string) bool {
	switch k {
	case "Authorization", "User-Agent", "X-Amzn-Trace-Id", "Expect", "Transfer-Encoding":
		return true
	}
	return false
}

// commonLowerNames avoids an allocation for the headers nearly every request has.
var commonLowerNames = map[string]string{
	"Content-Type":          "content-type",
	"Content-Md5":           "content-md5",
	"X-Amz-Date":            "x-amz-date",
	"X-Amz-Content-Sha256":  "x-amz-content-sha256",
	"X-Amz-Security-Token":  "x-amz-security-token",
	"X-Amz-Target":          "x-amz-target",
	"Amz-Sdk-Invocation-Id": "amz-sdk-invocation-id",
	"Amz-Sdk-Request":       "amz-sdk-request",
	"Accept-Encoding":       "accept-encoding",
	"Host":                  "host",
	"Range":                 "range",
}

func lowerHeaderName(k string) string {
	if l, ok := commonLowerNames[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// hoistHeaders moves the X-Amz-* headers a presigned URL carries in its query
// string into query, and returns the headers that remain.
func hoistHeaders(header http.Header, query url.Values) http.Header {
	remaining := http.Header{}
	for k, v := range header {
		switch k {
		case "X-Amz-Expected-Bucket-Owner":
			k = "x-amz-expected-bucket-owner"
		case "X-Amz-Request-Payer":
			k = "x-amz-request-payer"
		}
		if hasPrefixFold(k, "X-Amz-") && !isRequiredSignedHeader(k) {
			query[k] = v
		} else {
			remaining[k] = v
		}
	}
	return remaining
}

// requiredSignedHeaders are the X-Amz-* and standard headers the SDK keeps as
// headers when presigning.
var requiredSignedHeaders = map[string]struct{}{
	"Cache-Control": {}, "Content-Disposition": {}, "Content-Encoding": {}, "Content-Language": {},
	"Content-Md5": {}, "Content-Type": {}, "Expires": {}, "If-Match": {}, "If-Modified-Since": {},
	"If-None-Match": {}, "If-Unmodified-Since": {}, "Range": {}, "X-Amz-Acl": {}, "X-Amz-Copy-Source": {},
	"X-Amz-Copy-Source-If-Match": {}, "X-Amz-Copy-Source-If-Modified-Since": {},
	"X-Amz-Copy-Source-If-None-Match": {}, "X-Amz-Copy-Source-If-Unmodified-Since": {},
	"X-Amz-Copy-Source-Range": {}, "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm": {},
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key":     {},
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5": {},
	"X-Amz-Grant-Full-control":                                  {}, "X-Amz-Grant-Read": {}, "X-Amz-Grant-Read-Acp": {},
	"X-Amz-Grant-Write": {}, "X-Amz-Grant-Write-Acp": {}, "X-Amz-Metadata-Directive": {}, "X-Amz-Mfa": {},
	"X-Amz-Server-Side-Encryption": {}, "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": {},
	"X-Amz-Server-Side-Encryption-Context": {}, "X-Amz-Server-Side-Encryption-Customer-Algorithm": {},
	"X-Amz-Server-Side-Encryption-Customer-Key":     {},
	"X-Amz-Server-Side-Encryption-Customer-Key-Md5": {},
	"X-Amz-Storage-Class":                           {}, "X-Amz-Website-Redirect-Location": {}, "X-Amz-Content-Sha256": {},
	"X-Amz-Tagging": {},
}

func isRequiredSignedHeader(k string) bool {
	if _, ok := requiredSignedHeaders[k]; ok {
		return true
	}
	if hasPrefixFold(k, "X-Amz-Checksum-") && !hasPrefixFold(k, "X-Amz-Checksum-Mode") {
		return true
	}
	return hasPrefixFold(k, "X-Amz-Object-Lock-") || hasPrefixFold(k, "X-Amz-Meta-")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// sanitizeHostForHeader drops a default port from the request's host, as
// the SDK does, by setting r.Host.
func sanitizeHostForHeader(r *http.Request) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	port := portOnly(host)
	if port != "" && isDefaultPort(r.URL.Scheme, port) {
		r.Host = stripPort(host)
	}
}

func stripPort(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return hostport
	}
	if i := strings.IndexByte(hostport, ']'); i != -1 {
		return strings.TrimPrefix(hostport[:i], "[")
	}
	return hostport[:colon]
}

func portOnly(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return ""
	}
	if i := strings.Index(hostport, "]:"); i != -1 {
		return hostport[i+len("]:"):]
	}
	if strings.Contains(hostport, "]") {
		return ""
	}
	return hostport[colon+len(":"):]
}

func isDefaultPort(scheme, port string) bool {
	scheme = strings.ToLower(scheme)
	return (scheme == "http" && port == "80") || (scheme == "https" && port == "443")
}

// uriPath returns the request's escaped path: from URL.Opaque when set (the
// caller's own escaping), else URL.EscapedPath.
func uriPath(u *url.URL) string {
	var p string
	if u.Opaque != "" {
		opaque := u.Opaque
		if i := strings.IndexByte(opaque, '?'); i >= 0 {
			opaque = opaque[:i]
		}
		opaque = strings.TrimPrefix(opaque, "//")
		if i := strings.IndexByte(opaque, '/'); i >= 0 {
			p = opaque[i:]
		}
	} else {
		p = u.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return p
}

const upperHex = "0123456789ABCDEF"

// appendEscapedPath percent-encodes everything but unreserved characters and '/'.
func appendEscapedPath(buf []byte, path string) []byte {
	for i := 0; i < len(path); i++ {
		c := path[i]
		if isUnreserved(c) || c == '/' {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return buf
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendQueryComponent percent-encodes s as SigV4 wants a query name or value.
func appendQueryComponent(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return buf
}

// appendCanonicalQuery appends the query's pairs, each encoded, sorted by
// encoded name then encoded value (SigV4 sorts after encoding).
func appendCanonicalQuery(buf []byte, query url.Values) []byte {
	if len(query) == 0 {
		return buf
	}
	type pair struct{ key, value string }
	n := 0
	for _, vs := range query {
		n += len(vs)
	}
	pairs := make([]pair, 0, n)
	var scratch []byte
	enc := func(s string) string {
		for i := 0; i < len(s); i++ {
			if !isUnreserved(s[i]) {
				scratch = appendQueryComponent(scratch[:0], s)
				return string(scratch)
			}
		}
		return s
	}
	for k, vs := range query {
		ek := enc(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, enc(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range pairs {
		if i > 0 {
			buf = append(buf, '&')
		}
		buf = append(buf, p.key...)
		buf = append(buf, '=')
		buf = append(buf, p.value...)
	}
	return buf
}

// appendStripExcessSpaces appends s without leading and trailing spaces and
// with inner runs of spaces folded to one, like the SDK's StripExcessSpaces.
func appendStripExcessSpaces(buf []byte, s string) []byte {
	s = strings.Trim(s, " ")
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		buf = append(buf, c)
	}
	return buf
}
