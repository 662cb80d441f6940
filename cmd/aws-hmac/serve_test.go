package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testServer(t *testing.T, life time.Duration, every time.Duration) (*credServer, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s, err := newCredServer(func(context.Context) (creds, error) {
		i := n.Add(1)
		return creds{AccessKeyID: "ASIA" + strings.Repeat("X", int(i)), SecretAccessKey: "s", SessionToken: "t", Expiration: time.Now().Add(life)}, nil
	}, every)
	if err != nil {
		t.Fatal(err)
	}
	return s, &n
}

func get(s *credServer, token, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/credentials", nil)
	r.RemoteAddr = remote
	if token != "" {
		r.Header.Set("Authorization", token)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// The endpoint answers only its token, only on loopback.
func TestServeChecksTokenAndLoopback(t *testing.T) {
	s, _ := testServer(t, time.Hour, 0)
	if len(s.token) != 64 {
		t.Fatalf("token of %d characters is not 32 random bytes", len(s.token)) // never the token itself
	}
	for _, tc := range []struct {
		token, remote string
		want          int
	}{
		{"", "127.0.0.1:5000", http.StatusUnauthorized},
		{"wrong", "127.0.0.1:5000", http.StatusUnauthorized},
		{s.token + "x", "127.0.0.1:5000", http.StatusUnauthorized},
		{s.token, "192.0.2.7:5000", http.StatusForbidden},
		{s.token, "[::1]:5000", http.StatusOK},
		{s.token, "127.0.0.1:5000", http.StatusOK},
	} {
		if got := get(s, tc.token, tc.remote); got.Code != tc.want {
			t.Fatalf("%d-character token from %s: %d, want %d", len(tc.token), tc.remote, got.Code, tc.want)
		}
	}
	body := get(s, s.token, "127.0.0.1:1").Body.String()
	for _, f := range []string{`"AccessKeyId"`, `"SecretAccessKey"`, `"Token"`, `"Expiration"`} {
		if !strings.Contains(body, f) {
			t.Fatalf("answer %s lacks %s", body, f)
		}
	}
}

// Credentials are fetched again at 80% of their life, not before.
func TestServeRefreshesBeforeExpiry(t *testing.T) {
	s, n := testServer(t, time.Hour, 0)
	for range 5 {
		get(s, s.token, "127.0.0.1:1")
	}
	if n.Load() != 1 {
		t.Fatalf("%d fetches for fresh credentials", n.Load())
	}
	s.mu.Lock()
	s.fetched = time.Now().Add(-49 * time.Minute) // 81% of an hour
	s.current.Expiration = s.fetched.Add(time.Hour)
	s.mu.Unlock()
	get(s, s.token, "127.0.0.1:1")
	if n.Load() != 2 {
		t.Fatalf("%d fetches after 80%% of the life", n.Load())
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", ":0", "example.com:80"} {
		if l, err := listenLoopback(addr); err == nil {
			l.Close()
			t.Fatalf("%s accepted", addr)
		}
	}
	l, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// Every command explains itself with an example; those that talk to
// Vault name its address flag.
func TestHelp(t *testing.T) {
	// tpm enrols, wraps and checks on TPMs; version prints the build: neither asks Vault.
	offline := map[string]bool{"tpm": true, "version": true, "-version": true, "--version": true}
	for name := range subcommands {
		var out, errOut bytes.Buffer
		if code := run([]string{name, "-help"}, &out, &errOut); code != 0 {
			t.Fatalf("%s -help exited %d", name, code)
		}
		if help := errOut.String(); !strings.Contains(help, "Example") || (!offline[name] && !strings.Contains(help, "-address")) {
			t.Fatalf("%s -help: %s", name, help)
		}
	}
	var out bytes.Buffer
	if run([]string{"nope"}, &out, &out) != 2 {
		t.Fatal("unknown command accepted")
	}
}

// Without a role, credential-process fails on stderr with a non-zero exit.
func TestCredentialProcessErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"credential-process"}, &out, &errOut); code == 0 || out.Len() != 0 || !strings.Contains(errOut.String(), "-role") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// The child's environment keeps no key variables.
func TestChildEnv(t *testing.T) {
	env := childEnv([]string{"PATH=/bin", "AWS_SECRET_ACCESS_KEY=x", "AWS_ACCESS_KEY_ID=y", "AWS_PROFILE=p", "AWS_REGION=eu-west-3"})
	if strings.Join(env, " ") != "PATH=/bin AWS_REGION=eu-west-3" {
		t.Fatalf("child env %v", env)
	}
}
