package awshmac

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// An aws-chunked upload with a trailing checksum is signed for S3 only, and
// only with the headers that say how S3 decodes it.
func TestSignStreamingUnsignedTrailer(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	e.mustWrite(t, "roles/up", map[string]any{"allowed_services": "s3,sts", "allowed_regions": "*", "allowed_hosts": "*",
		"allowed_actions": "s3:PutObject,s3:UploadPart,sts:GetCallerIdentity"})
	headers := map[string]any{"x-amz-trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": "5",
		"Content-Encoding": "aws-chunked", "x-amz-sdk-checksum-algorithm": "CRC32"}
	good := map[string]any{"method": "PUT", "url": "https://bucket.s3.eu-west-3.amazonaws.com/k", "service": "s3",
		"payload_hash": streamingUnsignedTrailer, "headers": headers}
	resp, err := e.request(t, logical.UpdateOperation, "sign/up", good)
	if err != nil || resp.IsError() {
		t.Fatalf("aws-chunked PutObject: %v %v", err, resp)
	}
	out := resp.Data["headers"].(map[string]any)
	signed := resp.Data["signed_headers"].(string)
	if out["X-Amz-Content-Sha256"] != streamingUnsignedTrailer || !strings.Contains(signed, "content-encoding;") ||
		!strings.Contains(signed, "x-amz-decoded-content-length;") || !strings.Contains(signed, "x-amz-trailer") {
		t.Fatalf("signed %q, headers %v", signed, out)
	}
	without := func(name string) map[string]any {
		h := with(headers, name, nil)
		return with(good, "headers", h)
	}
	for _, tc := range []struct {
		name string
		data map[string]any
		want string
	}{
		{"not s3", with(good, "service", "sts", "url", "https://sts.amazonaws.com/", "method", "POST"), "payload_hash"},
		{"presign", with(good, "presign", true), "payload_hash"},
		{"no trailer", without("x-amz-trailer"), "x-amz-trailer"},
		{"trailer not a checksum", with(good, "headers", with(headers, "x-amz-trailer", "x-amz-meta-a")), "x-amz-trailer"},
		{"no decoded length", without("X-Amz-Decoded-Content-Length"), "x-amz-decoded-content-length"},
		{"decoded length not a number", with(good, "headers", with(headers, "X-Amz-Decoded-Content-Length", "-1")), "x-amz-decoded-content-length"},
		{"no content-encoding", without("Content-Encoding"), "content-encoding"},
		{"content-encoding not aws-chunked", with(good, "headers", with(headers, "Content-Encoding", "gzip")), "content-encoding"},
		{"other streaming mode", with(good, "payload_hash", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), "payload_hash"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "sign/up", tc.data)
		if status(resp, err) != http.StatusBadRequest || !strings.Contains(errText(resp, err), tc.want) {
			t.Errorf("%s: %d %q, want 400 naming %s", tc.name, status(resp, err), errText(resp, err), tc.want)
		}
	}
	// Several encodings, aws-chunked among them, as S3 reads them.
	resp, err = e.request(t, logical.UpdateOperation, "sign/up", with(good, "headers", with(headers, "Content-Encoding", "gzip, aws-chunked")))
	if err != nil || resp.IsError() {
		t.Fatalf("gzip, aws-chunked: %v %v", err, resp)
	}
}
