package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// The token file is the owner's only, and what it holds is the token: a
// rotation takes effect on the next request, an empty or missing file
// lets nobody in.
func TestServeTokenFileRotation(t *testing.T) {
	s, _ := testServer(t, time.Hour, 0)
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("operator's old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.writeTokenFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	first, _ := os.ReadFile(path)
	if string(first) != s.token {
		t.Fatal("the file does not hold the token")
	}
	if get(s, s.token, "127.0.0.1:1").Code != http.StatusOK {
		t.Fatal("the file's token refused")
	}
	rotated := strings.Repeat("r", 64)
	if err := os.WriteFile(path, []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if get(s, s.token, "127.0.0.1:1").Code != http.StatusUnauthorized || get(s, rotated, "127.0.0.1:1").Code != http.StatusOK {
		t.Fatal("rotation not taken at once")
	}
	for _, content := range []string{"", "\n"} {
		_ = os.WriteFile(path, []byte(content), 0o600)
		if get(s, "", "127.0.0.1:1").Code != http.StatusUnauthorized {
			t.Fatalf("file %q lets an empty token in", content)
		}
	}
	_ = os.Remove(path)
	if get(s, rotated, "127.0.0.1:1").Code != http.StatusUnauthorized {
		t.Fatal("a removed file's token still accepted")
	}
}

// Loopback; the link-local addresses the SDKs accept over plain HTTP;
// IMDS's only with -imds; anything else only with TLS.
func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr       string
		tls, imds  bool
		ok, remote bool
	}{
		{"127.0.0.1:0", false, false, true, false},
		{"[::1]:0", false, false, true, false},
		{"localhost:80", false, false, true, false},
		{"169.254.170.2:80", false, false, true, true},
		{"169.254.170.23:80", false, false, true, true},
		{"[fd00:ec2::23]:80", false, false, true, true},
		{"169.254.169.254:80", false, false, false, false},
		{"169.254.169.254:80", false, true, true, true},
		{"[fd00:ec2::254]:80", false, true, true, true},
		{"169.254.170.3:80", false, false, false, false},
		{"0.0.0.0:0", false, false, false, false},
		{":0", false, false, false, false},
		{"10.0.0.5:443", false, false, false, false},
		{"0.0.0.0:8443", true, false, true, true},
		{"10.0.0.5:443", true, false, true, true},
		{"nohost", true, false, false, false},
	} {
		remote, err := checkListen(tc.addr, tc.tls, tc.imds)
		if (err == nil) != tc.ok || remote != tc.remote {
			t.Errorf("%s tls=%v imds=%v: remote %v, err %v", tc.addr, tc.tls, tc.imds, remote, err)
		}
	}
}

// Off loopback the token alone is the guard: another container's address
// gets credentials with it and nothing without it.
func TestServeAnyRemote(t *testing.T) {
	s, _ := testServer(t, time.Hour, 0)
	s.anyRemote = true
	if get(s, s.token, "169.254.170.7:5000").Code != http.StatusOK || get(s, "", "169.254.170.7:5000").Code != http.StatusUnauthorized {
		t.Fatal("remote clients not judged by the token alone")
	}
}

// With -tls-cert/-tls-key the endpoint speaks HTTPS, on any address, and
// prints an https URI and the token file.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testenv.SelfSigned(t, dir)
	s, _ := testServer(t, time.Hour, 0)
	if err := s.writeTokenFile(filepath.Join(dir, "token")); err != nil {
		t.Fatal(err)
	}
	s.anyRemote = true
	l, err := s.listen(serveOptions{listen: "127.0.0.1:0", tlsCert: certFile, tlsKey: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	env := strings.Join(s.env(l), " ")
	if !strings.Contains(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI=https://127.0.0.1:") ||
		!strings.Contains(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="+filepath.Join(dir, "token")) || strings.Contains(env, s.token) {
		t.Fatalf("env: %d variables, https URI and file expected, no token", len(s.env(l)))
	}
	uri := "https://" + l.Addr().String() + "/credentials"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigWith(pool)}}
	req, _ := http.NewRequest(http.MethodGet, uri, nil)
	req.Header.Set("Authorization", s.token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS answer %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + l.Addr().String() + "/credentials"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

func tlsConfigWith(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
