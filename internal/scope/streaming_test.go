package scope

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An aws-chunked S3 upload's body is unsigned, as with UNSIGNED-PAYLOAD: no
// Content-Type is needed, the operation is still read from method and path,
// and ACL headers still need their action. Elsewhere the mode hides a body.
func TestStreamingTrailerIsUnsignedForS3(t *testing.T) {
	const mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	p := &Policy{Services: []string{"s3", "sts"}, Regions: []string{"*"}, Hosts: []string{"*"},
		Actions: []string{"s3:PutObject", "sts:GetCallerIdentity"}}
	put := func(h http.Header) *Request {
		u, _ := url.Parse("https://bucket.s3.us-east-1.amazonaws.com/k")
		return &Request{Method: "PUT", URL: u, Header: h, PayloadHash: mode, Service: "s3", Region: "us-east-1"}
	}
	chunked := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Trailer": {"x-amz-checksum-crc32"}}
	d, err := p.Check(put(chunked))
	if err != nil || d.Action() != "s3:PutObject" {
		t.Fatalf("aws-chunked PutObject: %q %v", d.Action(), err)
	}
	acl := chunked.Clone()
	acl.Set("X-Amz-Acl", "public-read")
	if _, err := p.Check(put(acl)); err == nil || !strings.Contains(err.Error(), "s3:PutObjectAcl") {
		t.Fatalf("aws-chunked with x-amz-acl: %v", err)
	}
	u, _ := url.Parse("https://sts.amazonaws.com/")
	sts := &Request{Method: "POST", URL: u, Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		PayloadHash: mode, Service: "sts", Region: "us-east-1"}
	if _, err := p.Check(sts); err == nil || !strings.Contains(err.Error(), "hidden behind payload_hash") {
		t.Fatalf("a Query body behind the streaming mode: %v", err)
	}
}
