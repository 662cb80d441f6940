package vaultsign

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A call holds at most MaxBatch requests, and fewer when they are large.
func TestChunks(t *testing.T) {
	small := make([]Request, 2500)
	if end := chunkEnd(small, 0); end != MaxBatch {
		t.Fatalf("small requests: a call of %d", end)
	}
	if end := chunkEnd(small, 2000); end != 2500 {
		t.Fatalf("the last call ends at %d", end)
	}
	big := []Request{{Body: make([]byte, 5<<20)}, {Body: make([]byte, 5<<20)}, {URL: strings.Repeat("u", 10)}}
	if end := chunkEnd(big, 0); end != 1 {
		t.Fatalf("two 5 MiB bodies in one call")
	}
	if end := chunkEnd([]Request{{Body: make([]byte, 20<<20)}}, 0); end != 1 {
		t.Fatal("a request larger than a call is still sent, for Vault to refuse")
	}
}

// A request's fields are sign/'s, and only those it sets.
func TestFields(t *testing.T) {
	f := Request{URL: "https://a/", Service: "s3", Presign: true, Expires: time.Hour, Body: []byte("x"),
		Headers: map[string][]string{"Content-Type": {"text/plain"}}}.fields()
	got, _ := json.Marshal(f)
	want := `{"body":"eA==","expires":3600,"headers":{"Content-Type":["text/plain"]},"presign":true,"service":"s3","url":"https://a/"}`
	if string(got) != want {
		t.Fatalf("%s\nwant %s", got, want)
	}
	item := parseResult(3, map[string]any{"status": json.Number("403"), "error": "url: no"})
	if ie, ok := item.Err.(*ItemError); !ok || ie.Status != 403 || ie.Index != 3 || ie.Error() != "request 4: 403 url: no" {
		t.Fatalf("%+v", item)
	}
}
