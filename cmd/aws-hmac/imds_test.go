package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	sdkimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

func imdsDo(t *testing.T, h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// IMDSv2 only: a session token from PUT with a TTL in 1..21600, required by
// every GET and dead after its TTL; nothing through a proxy.
func TestIMDSSessions(t *testing.T) {
	s, _ := testServer(t, time.Hour, 0)
	m := newIMDS(s, "deploy")
	for _, ttl := range []string{"", "0", "21601", "x"} {
		if got := imdsDo(t, m, http.MethodPut, "/latest/api/token", imdsTTLHeader, ttl); got.Code != http.StatusBadRequest {
			t.Fatalf("TTL %q: %d", ttl, got.Code)
		}
	}
	if got := imdsDo(t, m, http.MethodGet, "/latest/api/token"); got.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET token: %d", got.Code)
	}
	if got := imdsDo(t, m, http.MethodPut, "/latest/api/token", imdsTTLHeader, "60", "X-Forwarded-For", "192.0.2.1"); got.Code != http.StatusForbidden {
		t.Fatalf("proxied PUT: %d", got.Code)
	}
	put := imdsDo(t, m, http.MethodPut, "/latest/api/token", imdsTTLHeader, "60")
	tok := put.Body.String()
	if put.Code != http.StatusOK || len(tok) != 64 || put.Header().Get(imdsTTLHeader) != "60" {
		t.Fatalf("PUT: %d, token of %d characters, TTL %q", put.Code, len(tok), put.Header().Get(imdsTTLHeader))
	}
	for _, h := range [][]string{nil, {imdsTokenHeader, "wrong"}, {imdsTokenHeader, tok + "x"}} {
		if got := imdsDo(t, m, http.MethodGet, imdsCredsPath, h...); got.Code != http.StatusUnauthorized {
			t.Fatalf("GET with %d headers: %d", len(h), got.Code)
		}
	}
	if got := imdsDo(t, m, http.MethodGet, imdsCredsPath, imdsTokenHeader, tok); got.Code != http.StatusOK || got.Body.String() != "deploy" {
		t.Fatalf("role list: %d %q", got.Code, got.Body.String())
	}
	if got := imdsDo(t, m, http.MethodGet, imdsCredsPath+"other", imdsTokenHeader, tok); got.Code != http.StatusNotFound {
		t.Fatalf("another role: %d", got.Code)
	}
	m.mu.Lock()
	m.sessions[tok] = time.Now().Add(-time.Second)
	m.mu.Unlock()
	if got := imdsDo(t, m, http.MethodGet, imdsCredsPath, imdsTokenHeader, tok); got.Code != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", got.Code)
	}
}

// The credentials document has EC2's fields, and aws-sdk-go-v2's IMDS
// client and EC2 role provider read it.
func TestIMDSWithTheSDK(t *testing.T) {
	s, _ := testServer(t, time.Hour, 0)
	h := s.handler("deploy", true)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := sdkimds.New(sdkimds.Options{Endpoint: srv.URL, ClientEnableState: sdkimds.ClientEnabled})
	p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = c })
	got, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.AccessKeyID, "ASIA") || got.SessionToken != "t" || time.Until(got.Expires) < 50*time.Minute {
		t.Fatalf("the SDK read %q, expiring %v", got.AccessKeyID, got.Expires)
	}
	tok := imdsDo(t, h, http.MethodPut, "/latest/api/token", imdsTTLHeader, "5").Body.String()
	body := imdsDo(t, h, http.MethodGet, imdsCredsPath+"deploy", imdsTokenHeader, tok)
	var doc map[string]string
	if err := json.Unmarshal(body.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"} {
		if doc[k] == "" {
			t.Fatalf("no %s in the credentials document", k)
		}
	}
	// The container endpoint still wants its own token beside IMDS.
	if get(s, "", "127.0.0.1:1").Code != http.StatusUnauthorized {
		t.Fatal("container endpoint open")
	}
}

// Connections accepted for IMDS leave with a TTL / hop limit of 1.
func TestIMDSHopLimit(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err) // no IPv6 here
			continue
		}
		hl := hopLimitListener{l}
		go func() {
			c, err := net.Dial("tcp", l.Addr().String())
			if err == nil {
				defer c.Close()
				time.Sleep(100 * time.Millisecond)
			}
		}()
		c, err := hl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		n, err := hopLimit(c.(*net.TCPConn))
		c.Close()
		l.Close()
		if err != nil || n != 1 {
			t.Fatalf("%s: hop limit %d (%v), want 1", addr, n, err)
		}
	}
}
