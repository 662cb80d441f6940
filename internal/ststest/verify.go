package ststest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const maxSkew = 15 * time.Minute

// authError is an authentication failure, answered in STS's format.
type authError struct {
	status        int
	code, message string
}

// sigParts is what a request says about its own signature.
type sigParts struct {
	accessKeyID, date, region, service string
	signedHeaders, signature           string
	amzDate                            string
	token                              string
	presigned                          bool
	expires                            time.Duration
}

// parseAuth reads the signature from the Authorization header or, for a
// presigned request, from the query string.
func parseAuth(r *http.Request) (sigParts, *authError) {
	var p sigParts
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	switch {
	case auth != "":
		rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
		if !ok {
			return p, &authError{400, "IncompleteSignature", "Unsupported Authorization algorithm"}
		}
		fields := map[string]string{}
		for _, f := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			fields[k] = v
		}
		if fields["Credential"] == "" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
			return p, &authError{400, "IncompleteSignature", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters"}
		}
		p.signedHeaders, p.signature = fields["SignedHeaders"], fields["Signature"]
		if err := p.parseCredential(fields["Credential"]); err != nil {
			return p, err
		}
		p.amzDate = r.Header.Get("X-Amz-Date")
		p.token = r.Header.Get("X-Amz-Security-Token")
	case q.Get("X-Amz-Algorithm") != "":
		if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
			return p, &authError{400, "IncompleteSignature", "Unsupported X-Amz-Algorithm"}
		}
		p.presigned = true
		p.signedHeaders, p.signature = q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
		if err := p.parseCredential(q.Get("X-Amz-Credential")); err != nil {
			return p, err
		}
		p.amzDate = q.Get("X-Amz-Date")
		p.token = q.Get("X-Amz-Security-Token")
		if e := q.Get("X-Amz-Expires"); e != "" {
			d, err := time.ParseDuration(e + "s")
			if err != nil || d < 1 || d > 7*24*time.Hour {
				return p, &authError{400, "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds"}
			}
			p.expires = d
		} else {
			p.expires = maxSkew
		}
	default:
		return p, &authError{403, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	if p.amzDate == "" {
		return p, &authError{400, "IncompleteSignature", "Request is missing X-Amz-Date"}
	}
	return p, nil
}

func (p *sigParts) parseCredential(c string) *authError {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return &authError{400, "IncompleteSignature", "Credential should be scoped to a valid region, service and date"}
	}
	p.accessKeyID, p.date, p.region, p.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// verify checks the request's signature with aws-sdk-go-v2's signer: it
// rebuilds the request from exactly the headers the client signed, signs it
// with the secret the server holds and compares.
func (s *Server) verify(r *http.Request, body []byte, p sigParts, key *accessKey, now time.Time) *authError {
	signedAt, aerr := checkSigningTime(p, now)
	if aerr != nil {
		return aerr
	}
	signed := strings.Split(p.signedHeaders, ";")
	if !contains(signed, "host") {
		return &authError{403, "SignatureDoesNotMatch", "'Host' must be a signed header"}
	}
	if key.token != "" && !p.presigned && !contains(signed, "x-amz-security-token") {
		return &authError{403, "SignatureDoesNotMatch", "'X-Amz-Security-Token' must be a signed header"}
	}
	resigned, aerr := resignable(r, p, signed)
	if aerr != nil {
		return aerr
	}
	// STS hashes the body itself; only an explicit UNSIGNED-PAYLOAD is taken at its word.
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if r.Header.Get("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD" {
		payloadHash = "UNSIGNED-PAYLOAD"
	}
	creds := aws.Credentials{AccessKeyID: key.id, SecretAccessKey: key.secret, SessionToken: p.token}
	want, wantHeaders, aerr := expectedSignature(resigned, creds, payloadHash, p, signedAt)
	if aerr != nil {
		return aerr
	}
	if wantHeaders != p.signedHeaders || !hmac.Equal([]byte(want), []byte(p.signature)) {
		return &authError{403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. " +
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return nil
}

// checkSigningTime parses X-Amz-Date and refuses it as STS does: a
// credential scope of another day, an expired presigned URL, a clock skew
// over 15 minutes.
func checkSigningTime(p sigParts, now time.Time) (time.Time, *authError) {
	signedAt, err := time.Parse("20060102T150405Z", p.amzDate)
	if err != nil {
		return time.Time{}, &authError{400, "IncompleteSignature", "X-Amz-Date is not a valid ISO 8601 basic timestamp"}
	}
	if p.date != signedAt.Format("20060102") {
		return time.Time{}, &authError{403, "SignatureDoesNotMatch", "Credential date does not match X-Amz-Date"}
	}
	if p.presigned {
		if now.After(signedAt.Add(p.expires)) {
			return time.Time{}, &authError{403, "AccessDenied", "Request has expired"}
		}
		if signedAt.After(now.Add(maxSkew)) {
			return time.Time{}, &authError{403, "SignatureDoesNotMatch", "Signature not yet current"}
		}
		return signedAt, nil
	}
	if now.Sub(signedAt) > maxSkew {
		return time.Time{}, &authError{403, "SignatureDoesNotMatch", "Signature expired: " + p.amzDate + " is now earlier than " +
			now.Add(-maxSkew).Format("20060102T150405Z") + " (" + now.Format("20060102T150405Z") + " - 15 min.)"}
	}
	if signedAt.Sub(now) > maxSkew {
		return time.Time{}, &authError{403, "SignatureDoesNotMatch", "Signature not yet current: " + p.amzDate + " is still later than " +
			now.Add(maxSkew).Format("20060102T150405Z") + " (" + now.Format("20060102T150405Z") + " + 15 min.)"}
	}
	return signedAt, nil
}

// resignable is the request as the client signed it: its URL without the
// presigning parameters and exactly the headers it signed.
func resignable(r *http.Request, p sigParts, signed []string) (*http.Request, *authError) {
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	if p.presigned {
		q := r.URL.Query()
		for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"} {
			q.Del(k)
		}
		u.RawQuery = q.Encode()
	}
	// The client signed the path in its escaped form, escaped again.
	u.Opaque = "//" + r.Host + r.URL.EscapedPath()
	resigned := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			resigned.ContentLength = r.ContentLength
		default:
			if vs := r.Header.Values(h); len(vs) > 0 {
				resigned.Header[http.CanonicalHeaderKey(h)] = vs
			} else {
				return nil, &authError{403, "SignatureDoesNotMatch", "signed header " + h + " is missing from the request"}
			}
		}
	}
	return resigned, nil
}

// expectedSignature signs the rebuilt request with the server's secret and
// returns the signature and signed-header list the client should have sent.
func expectedSignature(resigned *http.Request, creds aws.Credentials, payloadHash string, p sigParts, signedAt time.Time) (want, wantHeaders string, aerr *authError) {
	signer := sdkv4.NewSigner(func(o *sdkv4.SignerOptions) { o.DisableHeaderHoisting = true })
	if p.presigned {
		signedURL, _, err := signer.PresignHTTP(context.Background(), creds, resigned, payloadHash, p.service, p.region, signedAt)
		if err != nil {
			return "", "", &authError{500, "InternalFailure", err.Error()}
		}
		su, _ := url.Parse(signedURL)
		return su.Query().Get("X-Amz-Signature"), su.Query().Get("X-Amz-SignedHeaders"), nil
	}
	if err := signer.SignHTTP(context.Background(), creds, resigned, payloadHash, p.service, p.region, signedAt); err != nil {
		return "", "", &authError{500, "InternalFailure", err.Error()}
	}
	auth := resigned.Header.Get("Authorization")
	want = auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	sh := auth[strings.Index(auth, "SignedHeaders=")+len("SignedHeaders="):]
	return want, sh[:strings.IndexByte(sh, ',')], nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
