package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const serveHelp = `Usage: aws-hmac serve -role R [-listen 127.0.0.1:0] [-mount aws-hmac]

Serves credentials from Vault's creds/<role> on loopback, as AWS SDKs and the
AWS CLI read a container-credentials endpoint, and prints the two variables to
export. Every request must carry the token, random per run. Credentials are
fetched again before they expire (at 80% of their life) and kept in memory.
Example:

  eval "$(aws-hmac serve -role deploy &)"; aws s3 ls

Flags:
`

// credServer is the container-credentials endpoint.
type credServer struct {
	fetch   func(context.Context) (creds, error)
	every   time.Duration // refetch at least this often; 0: at 80% of the life
	token   string
	mu      sync.Mutex
	current creds
	fetched time.Time
}

func newCredServer(fetch func(context.Context) (creds, error), every time.Duration) (*credServer, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &credServer{fetch: fetch, every: every, token: hex.EncodeToString(b[:])}, nil
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

func (s *credServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		http.Error(w, "loopback only", http.StatusForbidden)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(s.token)) != 1 {
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

// listenLoopback listens on addr, refusing any but a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-listen %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, errors.New("-listen must be a loopback address, such as 127.0.0.1:0")
	}
	return net.Listen("tcp", addr)
}

// startCredServer fetches once (to fail fast) and serves on loopback.
func startCredServer(v *vaultFlags, listen string, every time.Duration) (*credServer, net.Listener, error) {
	c, err := v.client()
	if err != nil {
		return nil, nil, err
	}
	s, err := newCredServer(func(ctx context.Context) (creds, error) { return readCreds(ctx, c, v, 0) }, every)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.get(ctx); err != nil {
		return nil, nil, err
	}
	l, err := listenLoopback(listen)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return s, l, nil
}

func (s *credServer) env(l net.Listener) []string {
	return []string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://" + l.Addr().String() + "/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN=" + s.token,
	}
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs, v := newFlags("serve", serveHelp, stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	every := fs.Duration("refresh-every", 0, "fetch new credentials at least this often; default at 80% of their life")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	s, l, err := startCredServer(v, *listen, *every)
	if err != nil {
		return fail(stderr, err)
	}
	for _, kv := range s.env(l) {
		fmt.Fprintf(stdout, "export %s\n", kv)
	}
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return 0
}
