package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// podServer serves each pod the role it names in the URL (/roles/<role>):
// the pod's projected service-account token, sent as the Authorization
// header (as EKS Pod Identity's SDKs send AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE),
// logs in at a JWT auth mount under that role, and Vault decides whether
// this pod may have it. The helper holds no token of its own for pods.
type podServer struct {
	client    *api.Client
	authMount string
	mount     string
	every     time.Duration
	anyRemote bool
	mu        sync.Mutex
	pods      map[[32]byte]*podEntry
}

type podEntry struct {
	creds   *credServer
	expires time.Time // the pod's Vault token's end
}

const (
	podMaxEntries = 10000
	podRelogin    = 5 * time.Minute
)

var podRoleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (p *podServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.anyRemote && !fromLoopback(r) {
		http.Error(w, "loopback only", http.StatusForbidden)
		return
	}
	role, ok := strings.CutPrefix(r.URL.Path, "/roles/")
	jwt := r.Header.Get("Authorization")
	if !ok || !podRoleName.MatchString(role) {
		http.NotFound(w, r)
		return
	}
	if jwt == "" {
		http.Error(w, "the pod's service-account token is required", http.StatusUnauthorized)
		return
	}
	s, err := p.entry(r.Context(), role, jwt)
	if err != nil {
		http.Error(w, "Vault refused this pod's token for role "+role, http.StatusForbidden)
		return
	}
	s.ServeHTTP(w, r)
}

// entry is the pod's credential server for role, logging in when none is
// cached or its Vault token has ended.
func (p *podServer) entry(ctx context.Context, role, jwt string) (*credServer, error) {
	key := sha256.Sum256([]byte(role + "\x00" + jwt))
	now := time.Now()
	p.mu.Lock()
	e, ok := p.pods[key]
	p.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.creds, nil
	}
	c, ttl, err := p.login(ctx, role, jwt)
	if err != nil {
		return nil, err
	}
	v := &vaultFlags{mount: p.mount, role: role}
	s, err := newCredServer(func(ctx context.Context) (creds, error) { return readCreds(ctx, c, v, 0) }, p.every)
	if err != nil {
		return nil, err
	}
	s.anyRemote, s.token = true, jwt // the pod's JWT is its token here
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, old := range p.pods {
		if !now.Before(old.expires) {
			delete(p.pods, k)
		}
	}
	if len(p.pods) >= podMaxEntries {
		return nil, errors.New("too many pods")
	}
	if ttl <= 0 || ttl > podRelogin {
		ttl = podRelogin // the JWT is checked again, so a revoked pod stops soon
	}
	p.pods[key] = &podEntry{creds: s, expires: now.Add(ttl)}
	return s, nil
}

// login exchanges the pod's JWT for a Vault token, on a client of its own.
func (p *podServer) login(ctx context.Context, role, jwt string) (*api.Client, time.Duration, error) {
	c, err := p.client.Clone()
	if err != nil {
		return nil, 0, err
	}
	c.ClearToken()
	s, err := c.Logical().WriteWithContext(ctx, "auth/"+p.authMount+"/login", map[string]any{"role": role, "jwt": jwt})
	if err != nil || s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, 0, errors.New("login refused")
	}
	c.SetToken(s.Auth.ClientToken)
	return c, time.Duration(s.Auth.LeaseDuration) * time.Second, nil
}

// startPodServer serves pods from o.listen, logging them in at authMount.
func startPodServer(v *vaultFlags, o serveOptions, authMount string, stdout io.Writer) (net.Listener, error) {
	if v.role != "" {
		return nil, errors.New("-role and -pod-jwt-mount exclude each other: pods name their roles")
	}
	anyRemote, err := checkListen(o.listen, o.tlsCert != "", false)
	if err != nil {
		return nil, err
	}
	c, err := v.newClient()
	if err != nil {
		return nil, err
	}
	p := &podServer{client: c, authMount: authMount, mount: v.mount, every: o.every, anyRemote: anyRemote, pods: map[[32]byte]*podEntry{}}
	s := &credServer{}
	l, err := s.listen(o)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "# each pod: AWS_CONTAINER_CREDENTIALS_FULL_URI=%s://%s/roles/<role>\n", scheme, l.Addr())
	fmt.Fprintf(stdout, "# and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=<its projected service-account token>\n")
	return l, nil
}
