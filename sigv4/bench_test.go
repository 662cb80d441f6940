package sigv4

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// benchRequest is a typical STS Query API call as the SDK sends it.
func benchRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "https://sts.us-east-1.amazonaws.com/", nil)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Amz-Sdk-Invocation-Id", "5c0f7b3e-6e0e-4c3c-9d2c-0a0c3b3e2b1a")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/sts#1.51.9")
	r.ContentLength = 43
	return r
}

const benchPayloadHash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"

// BenchmarkSignHTTP compares this signer (warm derived-key cache) with
// aws-sdk-go-v2's on the same request, in the same run.
func BenchmarkSignHTTP(b *testing.B) {
	ctx := context.Background()
	b.Run("hmac-key", func(b *testing.B) {
		s := NewSigner()
		key := awshmac.NewStaticKey(diffAccessKey, diffSecret)
		r := benchRequest()
		if err := s.SignHTTP(ctx, key, r, benchPayloadHash, "sts", "us-east-1", suiteTime); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := s.SignHTTP(ctx, key, r, benchPayloadHash, "sts", "us-east-1", suiteTime); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if calls := s.KeyStoreCalls(); calls != 1 {
			b.Fatalf("warm cache asked the key store %d times", calls)
		}
	})
	b.Run("aws-sdk-go-v2", func(b *testing.B) {
		s := sdkv4.NewSigner()
		creds := aws.Credentials{AccessKeyID: diffAccessKey, SecretAccessKey: diffSecret}
		r := benchRequest()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := s.SignHTTP(ctx, creds, r, benchPayloadHash, "sts", "us-east-1", suiteTime); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPresignHTTP does the same for presigned URLs.
func BenchmarkPresignHTTP(b *testing.B) {
	ctx := context.Background()
	newReq := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/some/key.txt?X-Amz-Expires=900", nil)
		return r
	}
	b.Run("hmac-key", func(b *testing.B) {
		s := NewSigner()
		key := awshmac.NewStaticKey(diffAccessKey, diffSecret)
		r := newReq()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.PresignHTTP(ctx, key, r, UnsignedPayload, "s3", "us-east-1", suiteTime); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aws-sdk-go-v2", func(b *testing.B) {
		s := sdkv4.NewSigner()
		creds := aws.Credentials{AccessKeyID: diffAccessKey, SecretAccessKey: diffSecret}
		r := newReq()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.PresignHTTP(ctx, creds, r, UnsignedPayload, "s3", "us-east-1", suiteTime); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCanonicalHeaders signs requests with more and more headers: the
// time per header stays flat (linear canonicalisation), where a search per
// header would grow with the count.
func BenchmarkCanonicalHeaders(b *testing.B) {
	key := awshmac.NewStaticKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	s := NewSigner()
	for _, n := range []int{16, 256, 4096, 48000} {
		b.Run(fmt.Sprintf("headers=%d", n), func(b *testing.B) {
			header := http.Header{}
			for i := range n {
				header[fmt.Sprintf("X-Amz-Meta-H%d", i)] = []string{"v"}
			}
			r := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "example.amazonaws.com", Path: "/"}, Header: header}
			b.ResetTimer()
			for b.Loop() {
				req := r.Clone(context.Background())
				if err := s.SignHTTP(context.Background(), key, req, EmptyStringSHA256, "s3", "us-east-1", time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/header")
		})
	}
}
