package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const serveHelp = `Usage: aws-hmac serve -role R [-listen 127.0.0.1:0] [-token-file F] [-tls-cert C -tls-key K] [-imds]

Serves credentials from Vault's creds/<role> as AWS SDKs and the AWS CLI read
a container-credentials endpoint, and prints the variables to export. Every
request must carry the token, random per run; with -token-file it is written
there (mode 0600) and the file is read again on every request, so an operator
can rotate it. Credentials are fetched again before they expire (at 80% of
their life) and kept in memory.

-listen takes a loopback address, a link-local address the SDKs accept over
plain HTTP (169.254.170.2, 169.254.170.23, fd00:ec2::23; the interface must
have it), or with -tls-cert/-tls-key any address. -imds also answers as EC2's
instance metadata service (IMDSv2 only) under /latest/. -pod-jwt-mount M,
instead of -role, serves many pods: each sends its projected service-account
token and names a role in the URL (/roles/<role>); the helper logs it in at
the JWT auth mount M under that role and serves what Vault allows.
Example:

  eval "$(aws-hmac serve -role deploy &)"; aws s3 ls
  aws-hmac serve -role deploy -listen 169.254.170.2:80 -token-file /run/aws/token

Flags:
`

// credServer is the container-credentials endpoint.
type credServer struct {
	fetch     func(context.Context) (creds, error)
	every     time.Duration // refetch at least this often; 0: at 80% of the life
	token     string
	tokenFile string // when set, the token is this file's content, read per request
	anyRemote bool   // off loopback: the token alone is the guard
	tls       bool
	mu        sync.Mutex
	current   creds
	fetched   time.Time
}

func newCredServer(fetch func(context.Context) (creds, error), every time.Duration) (*credServer, error) {
	tok, err := randomToken()
	if err != nil {
		return nil, err
	}
	return &credServer{fetch: fetch, every: every, token: tok}, nil
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// due reports whether the credentials must be fetched again.
func (s *credServer) dueLocked(now time.Time) bool {
	if s.current.AccessKeyID == "" {
		return true
	}
	refresh := s.fetched.Add(s.current.Expiration.Sub(s.fetched) * 4 / 5)
	if s.every > 0 && s.fetched.Add(s.every).Before(refresh) {
		refresh = s.fetched.Add(s.every)
	}
	return !now.Before(refresh)
}

// get returns fresh credentials, fetching them when due.
func (s *credServer) get(ctx context.Context) (creds, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); s.dueLocked(now) {
		c, err := s.fetch(ctx)
		if err != nil {
			return creds{}, err
		}
		s.current, s.fetched = c, now
	}
	return s.current, nil
}

// writeTokenFile puts the token in path, readable by its owner only.
func (s *credServer) writeTokenFile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("-token-file: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		return fmt.Errorf("-token-file: %w", err)
	}
	if _, err := f.WriteString(s.token); err != nil { // no newline: the SDKs refuse one
		return fmt.Errorf("-token-file: %w", err)
	}
	s.tokenFile = abs
	return nil
}

// authorized compares the request's token with the current one: the file's
// content, read each time so a rotation takes effect at once.
func (s *credServer) authorized(got string) bool {
	want := s.token
	if s.tokenFile != "" {
		b, err := os.ReadFile(s.tokenFile)
		if err != nil {
			return false
		}
		want = strings.TrimSpace(string(b))
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *credServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.anyRemote && !fromLoopback(r) {
		http.Error(w, "loopback only", http.StatusForbidden)
		return
	}
	if !s.authorized(r.Header.Get("Authorization")) {
		http.Error(w, "a valid authorization token is required", http.StatusUnauthorized)
		return
	}
	c, err := s.get(r.Context())
	if err != nil {
		http.Error(w, "credentials are not available from Vault", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "Token": c.SessionToken,
		"Expiration": c.Expiration.UTC().Format(time.RFC3339),
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plainHTTPHosts are the addresses besides loopback that the SDKs fetch
// container credentials from over plain HTTP (ECS, EKS Pod Identity).
var plainHTTPHosts = []string{"169.254.170.2", "169.254.170.23", "fd00:ec2::23"}

// imdsHosts are EC2's instance metadata addresses.
var imdsHosts = []string{"169.254.169.254", "fd00:ec2::254"}

// checkListen says whether addr may be listened on, and whether clients
// other than loopback ones will reach it.
func checkListen(addr string, withTLS, imds bool) (anyRemote bool, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("-listen %s: %w", addr, err)
	}
	ip := net.ParseIP(host)
	switch {
	case host == "localhost" || ip != nil && ip.IsLoopback():
		return false, nil
	case ip != nil && (oneOf(ip, plainHTTPHosts) || imds && oneOf(ip, imdsHosts)):
		return true, nil
	case withTLS:
		return true, nil
	}
	return false, errors.New("-listen must be a loopback address such as 127.0.0.1:0, " +
		strings.Join(plainHTTPHosts, ", ") + ", or any address with -tls-cert and -tls-key")
}

func oneOf(ip net.IP, hosts []string) bool {
	for _, h := range hosts {
		if ip.Equal(net.ParseIP(h)) {
			return true
		}
	}
	return false
}

// listenLoopback listens on addr, refusing any but a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	if remote, err := checkListen(addr, false, false); err != nil || remote {
		return nil, errors.New("-listen must be a loopback address, such as 127.0.0.1:0")
	}
	return net.Listen("tcp", addr)
}

// serveOptions are serve's flags beyond Vault's.
type serveOptions struct {
	listen          string
	every           time.Duration
	tokenFile       string
	tlsCert, tlsKey string
	imds            bool
}

// startCredServer fetches once (to fail fast) and serves on loopback.
func startCredServer(v *vaultFlags, listen string, every time.Duration) (*credServer, net.Listener, error) {
	return startServer(v, serveOptions{listen: listen, every: every})
}

// startServer fetches once (to fail fast), then serves as o says.
func startServer(v *vaultFlags, o serveOptions) (*credServer, net.Listener, error) {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, nil, errors.New("-tls-cert and -tls-key go together")
	}
	anyRemote, err := checkListen(o.listen, o.tlsCert != "", o.imds)
	if err != nil {
		return nil, nil, err
	}
	c, err := v.client()
	if err != nil {
		return nil, nil, err
	}
	s, err := newCredServer(func(ctx context.Context) (creds, error) { return readCreds(ctx, c, v, 0) }, o.every)
	if err != nil {
		return nil, nil, err
	}
	s.anyRemote = anyRemote
	if o.tokenFile != "" {
		if err := s.writeTokenFile(o.tokenFile); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.get(ctx); err != nil {
		return nil, nil, err
	}
	l, err := s.listen(o)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: s.handler(v.role, o.imds), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return s, l, nil
}

// listen opens o.listen, with TLS when asked and IMDS's hop limit of 1.
func (s *credServer) listen(o serveOptions) (net.Listener, error) {
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, err
	}
	if o.imds {
		l = hopLimitListener{l}
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		s.tls = true
	}
	return l, nil
}

// handler is the container endpoint, and IMDS under /latest/ when asked.
func (s *credServer) handler(role string, imds bool) http.Handler {
	if !imds {
		return s
	}
	mux := http.NewServeMux()
	mux.Handle("/latest/", newIMDS(s, role))
	mux.Handle("/", s)
	return mux
}

// env is what a client exports to reach the endpoint.
func (s *credServer) env(l net.Listener) []string {
	scheme, host := "http", l.Addr().String()
	if s.tls {
		scheme = "https"
	}
	if h, port, err := net.SplitHostPort(host); err == nil && net.ParseIP(h).IsUnspecified() {
		host = net.JoinHostPort("localhost", port)
	}
	env := []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + scheme + "://" + host + "/credentials"}
	if s.tokenFile != "" {
		return append(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="+s.tokenFile)
	}
	return append(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN="+s.token)
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs, v := newFlags("serve", serveHelp, stderr)
	var o serveOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to listen on: loopback, a link-local one the SDKs accept, or any with TLS")
	fs.DurationVar(&o.every, "refresh-every", 0, "fetch new credentials at least this often; default at 80% of their life")
	fs.StringVar(&o.tokenFile, "token-file", "", "write the token to this file (mode 0600) and accept whatever it holds, read per request")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate chain: serve HTTPS, on any address")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for -tls-cert")
	fs.BoolVar(&o.imds, "imds", false, "also answer as EC2's instance metadata service (IMDSv2) under /latest/")
	podMount := fs.String("pod-jwt-mount", "", "pod mode: each pod logs in at this JWT auth mount with its service-account token, for the role its URL names")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *podMount != "" {
		if _, err := startPodServer(v, o, *podMount, stdout); err != nil {
			return fail(stderr, err)
		}
		return waitForSignal()
	}
	s, l, err := startServer(v, o)
	if err != nil {
		return fail(stderr, err)
	}
	for _, kv := range s.env(l) {
		fmt.Fprintf(stdout, "export %s\n", kv)
	}
	if o.imds {
		scheme := "http"
		if s.tls {
			scheme = "https"
		}
		fmt.Fprintf(stdout, "export AWS_EC2_METADATA_SERVICE_ENDPOINT=%s://%s/\n", scheme, l.Addr())
	}
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	return waitForSignal()
}

func waitForSignal() int {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return 0
}
