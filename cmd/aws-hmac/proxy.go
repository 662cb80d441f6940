package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

const proxyHelp = `Usage: aws-hmac proxy -role R [-listen 127.0.0.1:8080 | -listen unix:/dir/sock] [-token-file F] [-service s3] [-region us-east-1] [-upstream URL]

A local endpoint that takes unsigned requests, has Vault sign each through
sign/<role> — so the role's scope applies to every request — and forwards it
to the real endpoint (-upstream, or https://SERVICE.REGION.amazonaws.com).
The application holds no credential at all. S3 bodies are streamed: with the
client's own payload mode when it sent one (a hex x-amz-content-sha256, or an
aws-chunked upload with a trailing checksum, passed through unchanged), else
UNSIGNED-PAYLOAD; other services' bodies, up to 10 MiB, go to Vault to be
signed, so the role's action scope sees them.
A request Vault refuses is answered with Vault's status and reason.

Before Vault is asked, a request is refused (403) when its Host is not the
listen address or localhost:PORT, when it has an Origin or a Sec-Fetch-Site
header (browsers send them, SDKs never do), and, with -token-file, when it lacks
the header X-Aws-Hmac-Proxy-Token with the token the proxy wrote to that file
(mode 0600, new each run) (401). -listen unix:/dir/sock listens on a Unix
socket (mode 0600, in a directory of mode 0700, made if missing) that only
this user can reach. Example:

  aws-hmac proxy -role reports -listen 127.0.0.1:8080 &
  aws --endpoint-url http://127.0.0.1:8080 --no-sign-request s3 ls s3://reports-bucket

Flags:
`

const maxProxyBody = 10 << 20

// proxyTokenHeader carries the per-run token of -token-file.
const proxyTokenHeader = "X-Aws-Hmac-Proxy-Token"

const (
	unsignedPayload  = "UNSIGNED-PAYLOAD"
	streamingTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// signProxy signs through Vault and forwards.
type signProxy struct {
	vault    *api.Client
	flags    *vaultFlags
	service  string
	region   string
	upstream *url.URL
	client   *http.Client
	hosts    []string // the Host values a request may name; nil on a Unix socket
	token    string   // what proxyTokenHeader must hold; "" without -token-file
}

// hopHeaders are the client's own; the signature covers none of them.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "Host", "Content-Length", "User-Agent", "Accept-Encoding",
	proxyTokenHeader}

func (p *signProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status, msg := p.refuse(r); status != 0 {
		p.awsError(w, status, "AccessDenied", msg)
		return
	}
	body, payload, err := p.payload(r)
	if err != nil {
		p.awsError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	target := *p.upstream
	target.Path, target.RawPath, target.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	headers := map[string]any{}
	for k, v := range r.Header {
		if !slices.Contains(hopHeaders, http.CanonicalHeaderKey(k)) {
			headers[k] = v
		}
	}
	req := map[string]any{"method": r.Method, "url": target.String(), "headers": headers, "service": p.service, "region": p.region}
	maps.Copy(req, payload)
	signed, err := p.vault.Logical().WriteWithContext(r.Context(), p.flags.mount+"/sign/"+p.flags.role, req)
	if err != nil {
		p.vaultRefusal(w, err)
		return
	}
	p.forward(w, r, signed, body)
}

// refuse answers what no application of this user sends, before Vault is
// asked: another Host (DNS rebinding), a browser's request (Origin,
// Sec-Fetch-Site, which SDKs never send), or a missing or wrong token.
func (p *signProxy) refuse(r *http.Request) (int, string) {
	switch {
	case p.hosts != nil && !slices.ContainsFunc(p.hosts, func(h string) bool { return strings.EqualFold(h, r.Host) }):
		return http.StatusForbidden, "the proxy answers only requests for " + strings.Join(p.hosts, " or ")
	case len(r.Header.Values("Origin")) > 0:
		return http.StatusForbidden, "the proxy refuses requests with an Origin header (a browser's)"
	case len(r.Header.Values("Sec-Fetch-Site")) > 0:
		return http.StatusForbidden, "the proxy refuses requests with Sec-Fetch-Site (a browser's)"
	case p.token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(proxyTokenHeader)), []byte(p.token)) != 1:
		return http.StatusUnauthorized, "the proxy needs its token in " + proxyTokenHeader
	}
	return 0, ""
}

// payload is the body to forward and what sign/ is told of it. S3's
// streams with the client's own payload mode, which S3 checks the body
// against; any other is sent to Vault whole, so the role's action scope
// sees an Action in a form body.
func (p *signProxy) payload(r *http.Request) (io.Reader, map[string]any, error) {
	if p.service == "s3" {
		mode, err := s3PayloadMode(r.Header)
		return r.Body, map[string]any{"payload_hash": mode}, err
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxProxyBody+1))
	if err != nil || len(b) > maxProxyBody {
		return nil, nil, fmt.Errorf("the body is larger than %d bytes", maxProxyBody)
	}
	return bytes.NewReader(b), map[string]any{"body": base64.StdEncoding.EncodeToString(b)}, nil
}

// s3PayloadMode is what the client's x-amz-content-sha256 and
// Content-Encoding say of its body; the body is never rewritten, so an
// aws-chunked one keeps its framing and trailing checksum.
func s3PayloadMode(h http.Header) (string, error) {
	sum := h.Get("X-Amz-Content-Sha256")
	chunked := slices.ContainsFunc(h.Values("Content-Encoding"), func(v string) bool {
		return slices.ContainsFunc(strings.Split(v, ","), func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), "aws-chunked") })
	})
	switch {
	case chunked && (sum == "" || sum == streamingTrailer):
		return streamingTrailer, nil
	case chunked:
		return "", errors.New("an aws-chunked body with signed chunks cannot be passed on: send it unsigned (" + streamingTrailer + ")")
	case sum == "" || sum == unsignedPayload:
		return unsignedPayload, nil
	case hexSHA256.MatchString(sum):
		return sum, nil
	}
	return "", errors.New("x-amz-content-sha256 must be a lower-case hex SHA-256, " + unsignedPayload + " or " + streamingTrailer)
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (p *signProxy) forward(w http.ResponseWriter, r *http.Request, signed *api.Secret, body io.Reader) {
	u, _ := signed.Data["url"].(string)
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u, body)
	if err != nil {
		http.Error(w, "bad signed URL", http.StatusBadGateway)
		return
	}
	for k, v := range r.Header {
		if !slices.Contains(hopHeaders, http.CanonicalHeaderKey(k)) {
			out.Header[k] = v
		}
	}
	for k, v := range signed.Data["headers"].(map[string]any) {
		out.Header.Set(k, fmt.Sprint(v))
	}
	if p.service == "s3" {
		out.ContentLength = r.ContentLength // streamed: the client's length
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, "the upstream endpoint could not be reached", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// vaultRefusal passes Vault's answer on — its status and its reason — as
// an AWS error the client's SDK can read.
func (p *signProxy) vaultRefusal(w http.ResponseWriter, err error) {
	status, code, msg := http.StatusBadGateway, "ServiceUnavailable", "Vault could not be reached"
	var re *api.ResponseError
	if errors.As(err, &re) {
		status, msg = re.StatusCode, "Vault refused to sign: "+strings.Join(re.Errors, "; ")
		code = map[int]string{http.StatusForbidden: "AccessDenied", http.StatusBadRequest: "InvalidRequest"}[status]
		if code == "" {
			code = "ServiceUnavailable"
		}
	}
	p.awsError(w, status, code, msg)
}

// awsError answers as the service would: S3's <Error>, or the Query
// protocol's <ErrorResponse>.
func (p *signProxy) awsError(w http.ResponseWriter, status int, code, msg string) {
	var b strings.Builder
	b.WriteString("<Code>" + code + "</Code><Message>")
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString("</Message>")
	body := "<Error>" + b.String() + "</Error>"
	if p.service != "s3" {
		body = "<ErrorResponse><Error><Type>Sender</Type>" + b.String() + "</Error><RequestId>aws-hmac-proxy</RequestId></ErrorResponse>"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func runProxy(args []string, stdout, stderr io.Writer) int {
	fs, v := newFlags("proxy", proxyHelp, stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address to listen on, or unix:/dir/sock for a Unix socket")
	tokenFile := fs.String("token-file", "", "write a new random token here (mode 0600) and require it in "+proxyTokenHeader)
	service := fs.String("service", "s3", "signing name of the service")
	region := fs.String("region", "us-east-1", "region to sign for")
	upstream := fs.String("upstream", "", "the real endpoint; default https://SERVICE.REGION.amazonaws.com")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	p, err := newSignProxy(v, *service, *region, *upstream)
	if err != nil {
		return fail(stderr, err)
	}
	l, where, err := p.listen(*listen)
	if err != nil {
		return fail(stderr, err)
	}
	defer l.Close()
	if *tokenFile != "" {
		if p.token, err = writeProxyToken(*tokenFile); err != nil {
			return fail(stderr, err)
		}
		defer os.Remove(*tokenFile)
		where += ", token in " + *tokenFile + " for " + proxyTokenHeader
	}
	fmt.Fprintf(stdout, "aws-hmac proxy: listening on %s, signing through %s/sign/%s for %s\n", where, v.mount, v.role, p.upstream)
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(l) }()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return 0
}

// listen opens -listen and sets the Host values requests may name.
func (p *signProxy) listen(addr string) (net.Listener, string, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		l, err := listenUnixPrivate(path)
		p.hosts = nil // no browser reaches a Unix socket
		return l, addr, err
	}
	l, err := listenLoopback(addr)
	if err != nil {
		return nil, "", err
	}
	p.hosts = proxyHosts(l.Addr().(*net.TCPAddr))
	return l, "http://" + l.Addr().String(), nil
}

// proxyHosts are the listen address and localhost, with its port (and
// without, on port 80, as clients then send it).
func proxyHosts(a *net.TCPAddr) []string {
	port := strconv.Itoa(a.Port)
	hosts := []string{net.JoinHostPort(a.IP.String(), port), "localhost:" + port}
	if a.Port == 80 {
		hosts = append(hosts, a.IP.String(), "localhost")
	}
	return hosts
}

// listenUnixPrivate listens on a socket only this user can reach: mode
// 0600, in a directory of this user's with mode 0700 (made if missing),
// which also covers the moment between listening and chmod.
func listenUnixPrivate(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, errors.New("-listen unix: needs an absolute path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ok || int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("-listen unix: %s must be a directory of this user's with mode 0700", dir)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("-listen unix: %s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("-listen unix: %s is in use", path)
		}
		_ = os.Remove(path) // an earlier run's
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// writeProxyToken writes a new random token to path, mode 0600, by
// renaming a new file over it: an existing file or link is replaced, never
// written through.
func writeProxyToken(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	f, err := os.CreateTemp(filepath.Dir(path), ".aws-hmac-proxy-token-*")
	if err != nil {
		return "", fmt.Errorf("-token-file: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(token + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("-token-file: %w", err)
	}
	return token, nil
}

func newSignProxy(v *vaultFlags, service, region, upstream string) (*signProxy, error) {
	c, err := v.client()
	if err != nil {
		return nil, err
	}
	if upstream == "" {
		upstream = "https://" + service + "." + region + ".amazonaws.com"
	}
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("-upstream must be an http or https URL")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &signProxy{vault: c, flags: v, service: service, region: region, upstream: u, client: client}, nil
}
