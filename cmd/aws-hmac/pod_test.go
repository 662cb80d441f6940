package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/vault/api"
)

// A pod must send its JWT and name a plain role; off loopback only with a
// remote listener; a login Vault does not grant is a 403.
func TestPodRequests(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Address = "http://127.0.0.1:1" // nothing there: every login fails
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &podServer{client: c, authMount: "jwt", mount: "aws-hmac", pods: map[[32]byte]*podEntry{}}
	for _, tc := range []struct {
		path, jwt, remote string
		want              int
	}{
		{"/roles/deploy", "", "127.0.0.1:1", http.StatusUnauthorized},
		{"/credentials", "a.b.c", "127.0.0.1:1", http.StatusNotFound},
		{"/roles/", "a.b.c", "127.0.0.1:1", http.StatusNotFound},
		{"/roles/../sys/seal", "a.b.c", "127.0.0.1:1", http.StatusNotFound},
		{"/roles/a/b", "a.b.c", "127.0.0.1:1", http.StatusNotFound},
		{"/roles/deploy", "a.b.c", "192.0.2.1:1", http.StatusForbidden},
		{"/roles/deploy", "a.b.c", "127.0.0.1:1", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://x"+tc.path, nil)
		r.URL.Path = tc.path // keep the dots for the check to see
		r.RemoteAddr = tc.remote
		if tc.jwt != "" {
			r.Header.Set("Authorization", tc.jwt)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Fatalf("%s from %s: %d, want %d", tc.path, tc.remote, w.Code, tc.want)
		}
	}
	if len(p.pods) != 0 {
		t.Fatal("a refused pod was cached")
	}
}
