// Package sigv4 signs AWS requests with Signature Version 4 using an
// hmac.Key, whose secret stays in its key store.
//
// It mirrors aws-sdk-go-v2's aws/signer/v4: for the same request, time,
// options and secret, SignHTTP and PresignHTTP produce byte for byte what the
// SDK's signer produces. The difference is where the secret is: the key store
// computes kDate = HMAC("AWS4"+secret, date) and this package derives the
// rest in memory, caching the signing key per key identity and version, UTC
// date, region and service.
//
// As with the SDK, a caller signing a path for a service other than S3 should
// pass the path already escaped (URL.Opaque or URL.RawPath); it is escaped a
// second time, as SigV4 requires. S3 callers set DisableURIPathEscaping.
package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"time"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

const (
	// EmptyStringSHA256 is the payload hash of an empty body.
	EmptyStringSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// UnsignedPayload is the payload hash S3 accepts for an unsigned body.
	UnsignedPayload = "UNSIGNED-PAYLOAD"

	signingAlgorithm = "AWS4-HMAC-SHA256"
	timeFormat       = "20060102T150405Z"
	shortTimeFormat  = "20060102"
)

var errKeyStoreOutput = errors.New("sigv4: key store returned an HMAC that is not 32 bytes")

// SignerOptions are the signer's options, as in aws-sdk-go-v2.
type SignerOptions struct {
	// DisableHeaderHoisting keeps X-Amz-* headers out of a presigned URL's
	// query string.
	DisableHeaderHoisting bool

	// DisableURIPathEscaping signs the path as it is escaped once; S3 needs it.
	DisableURIPathEscaping bool

	// DisableSessionToken leaves SessionToken off the request.
	DisableSessionToken bool

	// SessionToken is the token of temporary credentials, sent and signed as
	// X-Amz-Security-Token. Empty for long-term keys.
	SessionToken string
}

// Signer signs requests with SigV4. It is safe for concurrent use.
type Signer struct {
	options SignerOptions
	cache   *keyCache
}

// NewSigner returns a Signer with the given default options.
func NewSigner(optFns ...func(*SignerOptions)) *Signer {
	s := &Signer{cache: newKeyCache()}
	for _, fn := range optFns {
		fn(&s.options)
	}
	return s
}

// KeyStoreCalls reports how many times the signer has asked a key store for
// kDate. Tests and benchmarks use it to see the derived-key cache at work.
func (s *Signer) KeyStoreCalls() uint64 { return s.cache.calls.Load() }

// Forget drops every derived key the signer holds in memory. Call it when
// the key behind a signer changes configuration.
func (s *Signer) Forget() { s.cache.purge() }

// Signed is what one signature covered, for callers that report it.
type Signed struct {
	// SignedHeaders is the SignedHeaders value: lower-case names, sorted, ';'-joined.
	SignedHeaders string
	// CanonicalRequest is the canonical request whose hash was signed.
	CanonicalRequest string
	// Header holds the signed headers: for presigning, the ones that must be
	// sent with the URL.
	Header http.Header
	// URL is the URL to send: r's with its query in canonical order, or the
	// presigned URL.
	URL string
}

// SignHTTP signs r in place with an Authorization header, as aws-sdk-go-v2's
// Signer.SignHTTP does. payloadHash is the hex SHA-256 of the body (or
// UnsignedPayload where the service accepts it). On error r is unchanged.
func (s *Signer) SignHTTP(ctx context.Context, key awshmac.Key, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*SignerOptions)) error {
	opts := s.options
	for _, fn := range optFns {
		fn(&opts)
	}
	_, err := s.sign(ctx, key, r, payloadHash, service, region, signingTime, &opts, false, false)
	return err
}

// SignRequest signs r in place like SignHTTP and returns what it signed.
func (s *Signer) SignRequest(ctx context.Context, key awshmac.Key, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*SignerOptions)) (Signed, error) {
	opts := s.options
	for _, fn := range optFns {
		fn(&opts)
	}
	parts, err := s.sign(ctx, key, r, payloadHash, service, region, signingTime, &opts, false, true)
	if err != nil {
		return Signed{}, err
	}
	return Signed{SignedHeaders: parts.signedNames, CanonicalRequest: parts.canonical,
		Header: headerOf(parts.headers), URL: r.URL.String()}, nil
}

// PresignHTTP returns a presigned URL for r and the headers that were signed
// and so must be sent with it, as aws-sdk-go-v2's Signer.PresignHTTP does.
// Set X-Amz-Expires in r's query to bound the URL's life. r is not modified.
func (s *Signer) PresignHTTP(ctx context.Context, key awshmac.Key, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*SignerOptions)) (signedURI string, signedHeaders http.Header, err error) {
	signed, err := s.presign(ctx, key, r, payloadHash, service, region, signingTime, false, optFns)
	return signed.URL, signed.Header, err
}

// PresignRequest presigns r like PresignHTTP and returns what it signed.
func (s *Signer) PresignRequest(ctx context.Context, key awshmac.Key, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*SignerOptions)) (Signed, error) {
	return s.presign(ctx, key, r, payloadHash, service, region, signingTime, true, optFns)
}

func (s *Signer) presign(ctx context.Context, key awshmac.Key, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, keepCanonical bool, optFns []func(*SignerOptions)) (Signed, error) {
	opts := s.options
	for _, fn := range optFns {
		fn(&opts)
	}
	req := r.Clone(r.Context())
	parts, err := s.sign(ctx, key, req, payloadHash, service, region, signingTime, &opts, true, keepCanonical)
	if err != nil {
		return Signed{}, err
	}
	return Signed{SignedHeaders: parts.signedNames, CanonicalRequest: parts.canonical,
		Header: headerOf(parts.headers), URL: req.URL.String()}, nil
}

func headerOf(headers []canonicalHeader) http.Header {
	h := make(http.Header, len(headers))
	for _, c := range headers {
		k := textproto.CanonicalMIMEHeaderKey(c.name)
		h[k] = append(h[k], c.values...)
	}
	return h
}

func (s *Signer) sign(ctx context.Context, key awshmac.Key, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, opts *SignerOptions, presign, keepCanonical bool) (signedParts, error) {
	if key == nil {
		return signedParts{}, errors.New("sigv4: no key")
	}
	if err := ctx.Err(); err != nil {
		return signedParts{}, err // the caller has gone: do no work for it
	}
	t := signingTime.UTC()
	var dateBuf [16]byte
	amzDate := string(t.AppendFormat(dateBuf[:0], timeFormat))
	shortDate := amzDate[:8]

	// Ask for the signing key first, so a key-store failure leaves r as it was.
	signingKey, err := s.cache.signingKey(ctx, key, shortDate, region, service)
	if err != nil {
		return signedParts{}, err
	}

	b := canonicalizer{
		req:         r,
		accessKeyID: key.AccessKeyID(),
		service:     service,
		region:      region,
		amzDate:     amzDate,
		shortDate:   shortDate,
		payloadHash: payloadHash,
		presign:     presign,
		opts:        opts,
	}
	return b.build(signingKey, keepCanonical), nil
}
