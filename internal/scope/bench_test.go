package scope

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// BenchmarkCheck is the scope's decision per request, beside one SigV4
// key-derivation chain (four HMAC-SHA256), the least a signature costs.
func BenchmarkCheck(b *testing.B) {
	p := &Policy{Services: []string{"*"}, Regions: []string{"*"}, Hosts: []string{"*"}, Paths: []string{"/*"},
		Actions: []string{"s3:GetObject", "sts:GetCallerIdentity", "dynamodb:GetItem", "lambda:Invoke"}}
	for _, c := range []struct {
		name string
		r    req
	}{
		{"s3-virtual-hosted", s3r("GET", "https://reports-bucket.s3.us-east-1.amazonaws.com/2026/q3.csv?versionId=3")},
		{"sts-query-form", stsForm("Action=GetCallerIdentity&Version=2011-06-15")},
		{"dynamodb-json", jsonReq("dynamodb.us-east-1.amazonaws.com", "dynamodb", "DynamoDB_20120810.GetItem", `{"TableName":"t"}`)},
		{"lambda-rest", req{method: "POST", url: "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations", service: "lambda",
			header: map[string]string{"Content-Type": "application/json"}, body: s("{}")}},
	} {
		r := c.r.build()
		if _, err := p.Check(r); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Check(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("reference-hmac-chain", func(b *testing.B) {
		key := []byte("AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
		b.ReportAllocs()
		for b.Loop() {
			k := key
			for _, m := range []string{"20261130", "us-east-1", "s3", "aws4_request"} {
				h := hmac.New(sha256.New, k)
				h.Write([]byte(m))
				k = h.Sum(nil)
			}
		}
	})
}
