package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

const proxyHelp = `Usage: aws-hmac proxy -role R [-listen 127.0.0.1:8080] [-service s3] [-region us-east-1] [-upstream URL]

A local endpoint that takes unsigned requests, has Vault sign each through
sign/<role> — so the role's scope applies to every request — and forwards it
to the real endpoint (-upstream, or https://SERVICE.REGION.amazonaws.com).
The application holds no credential at all. S3 bodies are streamed unsigned
(UNSIGNED-PAYLOAD); other services' bodies, up to 10 MiB, go to Vault to be
signed, so the role's action scope sees them.
A request Vault refuses is answered with Vault's status and reason. Example:

  aws-hmac proxy -role reports -listen 127.0.0.1:8080 &
  aws --endpoint-url http://127.0.0.1:8080 --no-sign-request s3 ls s3://reports-bucket

Flags:
`

const maxProxyBody = 10 << 20

// signProxy signs through Vault and forwards.
type signProxy struct {
	vault    *api.Client
	flags    *vaultFlags
	service  string
	region   string
	upstream *url.URL
	client   *http.Client
}

// hopHeaders are the client's own; the signature covers none of them.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "Host", "Content-Length", "User-Agent", "Accept-Encoding"}

func (p *signProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, payload, err := p.payload(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
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

// payload is the body to forward and what sign/ is told of it: S3's
// streams unsigned; any other is sent to Vault whole, so the role's
// action scope sees an Action in a form body.
func (p *signProxy) payload(r *http.Request) (io.Reader, map[string]any, error) {
	if p.service == "s3" {
		return r.Body, map[string]any{"payload_hash": "UNSIGNED-PAYLOAD"}, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxProxyBody+1))
	if err != nil || len(b) > maxProxyBody {
		return nil, nil, fmt.Errorf("the body is larger than %d bytes", maxProxyBody)
	}
	return bytes.NewReader(b), map[string]any{"body": base64.StdEncoding.EncodeToString(b)}, nil
}

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
// an AWS error the client's SDK can read: S3's <Error>, or the Query
// protocol's <ErrorResponse>.
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
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address to listen on")
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
	l, err := listenLoopback(*listen)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "aws-hmac proxy: listening on http://%s, signing through %s/sign/%s for %s\n", l.Addr(), v.mount, v.role, p.upstream)
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
