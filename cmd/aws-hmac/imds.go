package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IMDSv2's session headers and limits, as EC2 has them.
const (
	imdsTTLHeader   = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	imdsTokenHeader = "X-Aws-Ec2-Metadata-Token"
	imdsMaxTTL      = 21600
	imdsMaxSessions = 10000
	imdsCredsPath   = "/latest/meta-data/iam/security-credentials/"
)

// imds answers as EC2's instance metadata service, IMDSv2 only, with the
// credentials of one role: a GET must carry a token from PUT /latest/api/token.
type imds struct {
	creds    *credServer
	role     string
	mu       sync.Mutex
	sessions map[string]time.Time // token: its expiry
}

func newIMDS(s *credServer, role string) *imds {
	return &imds{creds: s, role: role, sessions: map[string]time.Time{}}
}

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// EC2 refuses what came through a proxy; the hop limit stops routers.
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/latest/api/token" {
		m.newSession(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !m.valid(r.Header.Get(imdsTokenHeader)) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	switch strings.TrimPrefix(r.URL.Path, imdsCredsPath) {
	case "":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(m.role))
	case m.role:
		m.writeCreds(w, r)
	default:
		http.NotFound(w, r)
	}
}

// newSession answers PUT /latest/api/token with a token for the TTL asked.
func (m *imds) newSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(imdsTTLHeader))
	if err != nil || ttl < 1 || ttl > imdsMaxTTL {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	tok, err := randomToken()
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	now := time.Now()
	m.mu.Lock()
	for t, exp := range m.sessions {
		if !now.Before(exp) {
			delete(m.sessions, t)
		}
	}
	full := len(m.sessions) >= imdsMaxSessions
	if !full {
		m.sessions[tok] = now.Add(time.Duration(ttl) * time.Second)
	}
	m.mu.Unlock()
	if full {
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		return
	}
	w.Header().Set(imdsTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (m *imds) valid(tok string) bool {
	if tok == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.sessions[tok]
	return ok && time.Now().Before(exp)
}

// writeCreds answers in the format EC2 serves and the SDKs read.
func (m *imds) writeCreds(w http.ResponseWriter, r *http.Request) {
	c, err := m.creds.get(r.Context())
	if err != nil {
		http.Error(w, "credentials are not available from Vault", http.StatusBadGateway)
		return
	}
	m.creds.mu.Lock()
	updated := m.creds.fetched
	m.creds.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain") // as EC2 sends it
	_ = json.NewEncoder(w).Encode(map[string]string{
		"Code": "Success", "LastUpdated": updated.UTC().Format(time.RFC3339), "Type": "AWS-HMAC",
		"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "Token": c.SessionToken,
		"Expiration": c.Expiration.UTC().Format(time.RFC3339),
	})
}

// hopLimitListener sets each connection's IP TTL / hop limit to 1, as EC2
// does for IMDSv2's answers, so they die at the first router.
type hopLimitListener struct{ net.Listener }

func (l hopLimitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := setHopLimit(tc, 1); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}
