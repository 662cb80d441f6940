package sigv4

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

const suiteDir = "testdata/aws-c-auth-v4"

type suiteContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	ExpirationInSeconds int       `json:"expiration_in_seconds"`
	Normalize           bool      `json:"normalize"`
	Region              string    `json:"region"`
	Service             string    `json:"service"`
	SignBody            bool      `json:"sign_body"`
	Timestamp           time.Time `json:"timestamp"`
	OmitSessionToken    bool      `json:"omit_session_token"`
}

type suiteCase struct {
	name    string
	ctx     suiteContext
	method  string
	path    string // raw, not escaped
	query   string
	host    string
	headers [][2]string
	body    []byte
}

func readFile(t testing.TB, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadSuite(t *testing.T) []suiteCase {
	t.Helper()
	entries, err := os.ReadDir(suiteDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []suiteCase
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c := suiteCase{name: e.Name()}
		if err := json.Unmarshal([]byte(readFile(t, suiteDir, e.Name(), "context.json")), &c.ctx); err != nil {
			t.Fatal(err)
		}
		parseRawRequest(t, &c, readFile(t, suiteDir, e.Name(), "request.txt"))
		cases = append(cases, c)
	}
	return cases
}

// parseRawRequest reads the suite's request.txt: a request line, headers
// (a line starting with white space continues the one above), a blank line
// and the body.
func parseRawRequest(t *testing.T, c *suiteCase, raw string) {
	t.Helper()
	head, body, _ := strings.Cut(raw, "\n\n")
	c.body = []byte(body)
	sc := bufio.NewScanner(strings.NewReader(head))
	sc.Scan()
	line := sc.Text()
	method, rest, _ := strings.Cut(line, " ")
	target := rest[:strings.LastIndex(rest, " ")]
	c.method = method
	c.path, c.query, _ = strings.Cut(target, "?")
	for sc.Scan() {
		l := sc.Text()
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			last := &c.headers[len(c.headers)-1]
			last[1] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(k, "host") {
			c.host = v
			continue
		}
		c.headers = append(c.headers, [2]string{k, v})
	}
}

// normalizePath removes dot segments and empty segments, as the suite's
// normalising services do before they sign.
func normalizePath(p string) string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	n := "/" + strings.Join(out, "/")
	if len(out) > 0 && strings.HasSuffix(p, "/") {
		n += "/"
	}
	return n
}

// request builds the http.Request a client would send for the case, and the
// options it would sign with: normalising services get the path escaped
// once by the signer (URL.Opaque carries it raw), S3-like ones sign the path
// as escaped by net/url.
func (c *suiteCase) request(t testing.TB, presign bool) (*http.Request, string, []func(*SignerOptions)) {
	t.Helper()
	u := &url.URL{Scheme: "https", Host: c.host, RawQuery: c.query}
	var opts []func(*SignerOptions)
	if c.ctx.Normalize {
		u.Opaque = "//" + c.host + normalizePath(c.path)
	} else {
		u.Path = c.path
		opts = append(opts, func(o *SignerOptions) { o.DisableURIPathEscaping = true })
	}
	r := &http.Request{Method: c.method, URL: u, Host: c.host, Header: http.Header{}}
	for _, h := range c.headers {
		if strings.EqualFold(h[0], "Content-Length") {
			n, err := strconv.ParseInt(h[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			r.ContentLength = n
			continue
		}
		r.Header.Add(h[0], h[1])
	}
	payloadHash := EmptyStringSHA256
	if len(c.body) > 0 || c.ctx.SignBody {
		sum := sha256.Sum256(c.body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	if c.ctx.SignBody && !presign {
		r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	if presign {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(c.ctx.ExpirationInSeconds))
		r.URL.RawQuery = q.Encode()
	}
	if tok := c.ctx.Credentials.Token; tok != "" && !c.ctx.OmitSessionToken {
		opts = append(opts, func(o *SignerOptions) { o.SessionToken = tok })
	}
	return r, payloadHash, opts
}

func TestOfficialSuite(t *testing.T) {
	cases := loadSuite(t)
	if len(cases) != 38 {
		t.Fatalf("suite has %d cases, want 38", len(cases))
	}
	signatures := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := awshmac.NewStaticKey(c.ctx.Credentials.AccessKeyID, c.ctx.Credentials.SecretAccessKey)
			s := NewSigner()

			r, payloadHash, opts := c.request(t, false)
			if err := s.SignHTTP(context.Background(), key, r, payloadHash, c.ctx.Service, c.ctx.Region, c.ctx.Timestamp, opts...); err != nil {
				t.Fatal(err)
			}
			wantSig := readFile(t, suiteDir, c.name, "header-signature.txt")
			auth := r.Header.Get("Authorization")
			if !strings.HasSuffix(auth, "Signature="+wantSig) {
				t.Errorf("header signature: got %q, want signature %s", auth, wantSig)
			}
			if want := expectedHeader(t, c.name, "Authorization"); auth != want {
				t.Errorf("Authorization:\n got %s\nwant %s", auth, want)
			}
			if got, want := r.Header.Get("X-Amz-Date"), c.ctx.Timestamp.Format(timeFormat); got != want {
				t.Errorf("X-Amz-Date %q, want %q", got, want)
			}

			r, payloadHash, opts = c.request(t, true)
			signedURL, _, err := s.PresignHTTP(context.Background(), key, r, payloadHash, c.ctx.Service, c.ctx.Region, c.ctx.Timestamp, opts...)
			if err != nil {
				t.Fatal(err)
			}
			wantQuerySig := readFile(t, suiteDir, c.name, "query-signature.txt")
			if !strings.HasSuffix(signedURL, "&X-Amz-Signature="+wantQuerySig) {
				t.Errorf("query signature: got %q, want %s", signedURL, wantQuerySig)
			}
			signatures += 2
		})
	}
	if !t.Failed() && signatures != 76 {
		t.Fatalf("checked %d signatures, want 76", signatures)
	}
}

// expectedHeader reads a header from the case's header-signed-request.txt.
func expectedHeader(t *testing.T, name, header string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, suiteDir, name, "header-signed-request.txt"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, header) {
			return v
		}
	}
	t.Fatalf("%s: no %s header in header-signed-request.txt", name, header)
	return ""
}

// SignRequest and PresignRequest return the canonical request the suite
// expects and the SignedHeaders their signature names.
func TestSignRequestReturnsWhatItSigned(t *testing.T) {
	for _, c := range loadSuite(t) {
		t.Run(c.name, func(t *testing.T) {
			key := awshmac.NewStaticKey(c.ctx.Credentials.AccessKeyID, c.ctx.Credentials.SecretAccessKey)
			s := NewSigner()
			r, payloadHash, opts := c.request(t, false)
			signed, err := s.SignRequest(context.Background(), key, r, payloadHash, c.ctx.Service, c.ctx.Region, c.ctx.Timestamp, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if want := readFile(t, suiteDir, c.name, "header-canonical-request.txt"); signed.CanonicalRequest != want {
				t.Errorf("canonical request:\n got %q\nwant %q", signed.CanonicalRequest, want)
			}
			if !strings.Contains(r.Header.Get("Authorization"), "SignedHeaders="+signed.SignedHeaders+",") {
				t.Errorf("SignedHeaders %q not the Authorization header's %q", signed.SignedHeaders, r.Header.Get("Authorization"))
			}
			r, payloadHash, opts = c.request(t, true)
			pre, err := s.PresignRequest(context.Background(), key, r, payloadHash, c.ctx.Service, c.ctx.Region, c.ctx.Timestamp, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if want := readFile(t, suiteDir, c.name, "query-canonical-request.txt"); pre.CanonicalRequest != want {
				t.Errorf("presign canonical request:\n got %q\nwant %q", pre.CanonicalRequest, want)
			}
			wantSig := readFile(t, suiteDir, c.name, "query-signature.txt")
			if !strings.HasSuffix(pre.URL, "&X-Amz-Signature="+wantSig) {
				t.Errorf("presigned URL %q, want signature %s", pre.URL, wantSig)
			}
		})
	}
}
