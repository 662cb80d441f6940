package scope

import (
	"net/http"
	"strings"
	"testing"
)

// A header the scope reads is read in all its values: a first value that
// looks harmless must not hide a second that the service reads.
func TestMultiValuedHeadersRead(t *testing.T) {
	gci := "Action=GetCallerIdentity&Version=2011-06-15"
	for _, tc := range []struct {
		name, header string
		values       []string
		want         string
	}{
		{"gzip behind identity", "Content-Encoding", []string{"identity", "gzip"}, "Content-Encoding"},
		{"X-Amzn-Target behind an empty value", "X-Amzn-Target", []string{"", "AWSSecurityTokenServiceV20110615.AssumeRole"}, ""},
		{"Smithy-Protocol behind an empty value", "Smithy-Protocol", []string{"", "rpc-v2-cbor"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := *policies["gci"]
			p.Regions, p.Hosts = []string{"*"}, []string{"*"}
			r := stsForm(gci).build()
			r.Header[http.CanonicalHeaderKey(tc.header)] = tc.values
			d, err := p.Check(r)
			se, ok := err.(*Error)
			if !ok || se.Status != http.StatusForbidden {
				t.Fatalf("signed as %q (err %v), want a refusal", d.Operation, err)
			}
			if tc.want != "" && !strings.Contains(se.Msg, tc.want) {
				t.Fatalf("refusal %q does not name %s", se.Msg, tc.want)
			}
		})
	}
}

// Two Content-Types: the scope cannot know which one the service reads.
func TestTwoContentTypesRefused(t *testing.T) {
	p := *policies["gci"]
	p.Regions, p.Hosts = []string{"*"}, []string{"*"}
	r := stsForm("Action=GetCallerIdentity&Version=2011-06-15").build()
	r.Header["Content-Type"] = []string{"application/x-www-form-urlencoded", "application/x-amz-json-1.1"}
	if _, err := p.Check(r); err == nil || err.(*Error).Status != http.StatusBadRequest || !strings.Contains(err.Error(), "Content-Type") {
		t.Fatalf("got %v, want a 400 naming Content-Type", err)
	}
}
