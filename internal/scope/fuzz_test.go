package scope

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/awsmodel"
)

var fuzzPolicy = &Policy{Services: []string{"*"}, Regions: []string{"*"}, Hosts: []string{"*"},
	Actions: []string{"s3:Get*", "s3:PutObject", "sts:GetCallerIdentity", "dynamodb:GetItem", "sqs:SendMessage", "lambda:Invoke", "iam:ListUsers"}}

// FuzzCheck: whatever the bytes, an accepted request names its operation
// once, in the place its service's protocol reads it, that operation is
// one the policy allows (an authority one only when listed exactly), and
// nothing the service would read is out of sight.
func FuzzCheck(f *testing.F) {
	f.Add("POST", "https://sts.amazonaws.com/", "sts", "", formCT, "Action=GetCallerIdentity", false)
	f.Add("POST", "https://sts.amazonaws.com/?Action=GetCallerIdentity", "sts", "X", "text/plain", "Action=AssumeRole", false)
	f.Add("POST", "https://sts.amazonaws.com/?Action=GetCallerIdentity", "sts", "", "", "Action=AssumeRole", true)
	f.Add("POST", "https://iam.amazonaws.com/", "iam", "AWSIdentityManagementV20100508.ListUsers", formCT, "Action=CreateAccessKey", true)
	f.Add("POST", "https://dynamodb.us-east-1.amazonaws.com/", "dynamodb", "DynamoDB_20120810.GetItem", "application/x-amz-json-1.0", "{}", false)
	f.Add("POST", "https://sqs.us-east-1.amazonaws.com/", "sqs", "AmazonSQS.SendMessage", formCT, "Action=DeleteQueue", false)
	f.Add("GET", "https://b.s3.us-east-1.amazonaws.com/k?acl", "s3", "", "", "", false)
	f.Add("PUT", "https://s3.us-east-1.amazonaws.com/b/?policy", "s3", "", "", "", false)
	f.Add("PUT", "https://B.S3.amazonaws.com/k?x-id=PutObject", "s3", "", "application/octet-stream", "data", false)
	f.Add("POST", "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations?Qualifier=1", "lambda", "", "application/json", "{}", false)
	f.Fuzz(func(t *testing.T, method, rawURL, service, target, contentType, body string, hide bool) {
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return
		}
		r := &Request{Method: method, URL: u, Header: http.Header{}, Service: service, Region: "us-east-1"}
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.Body, r.PayloadHash = []byte(body), sha(body)
		if hide {
			r.Body = nil
		}
		d, err := fuzzPolicy.Check(r)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("an error of another kind: %v", err)
			}
			return
		}
		checkAccepted(t, r, d)
	})
}

func checkAccepted(t *testing.T, r *Request, d Decision) {
	if d.Operation == "" {
		t.Fatal("accepted without an operation, under a policy that limits actions")
	}
	if fuzzPolicy.allows(d.Action(), IsAuthority(d.Service, d.Operation)) != nil {
		t.Fatalf("accepted %s, which the policy does not allow", d.Action())
	}
	if len(r.Body) > 0 && r.Header.Get("Content-Type") == "" {
		t.Fatal("accepted a body without its Content-Type")
	}
	models := awsmodel.Services(r.Service)
	if isS3(r.Service) || r.Service == "execute-api" {
		return
	}
	if t2 := r.Header.Get("X-Amz-Target"); t2 != "" {
		if !targetNames(models, t2, d.Operation) {
			t.Fatalf("accepted %s, but X-Amz-Target names another operation", d.Action())
		}
		return
	}
	actions := actionValues(r)
	if speaks(models, awsmodel.Query) || speaks(models, awsmodel.EC2) {
		if r.Body == nil && hasPayload(r.PayloadHash) {
			t.Fatal("accepted a Query-protocol request whose body is hidden")
		}
		if len(actions) != 1 || !strings.EqualFold(actions[0], d.Operation) {
			t.Fatalf("accepted %s, but the request's Action values are %d", d.Action(), len(actions))
		}
	}
}

func targetNames(models []*awsmodel.Service, target, op string) bool {
	for _, s := range models {
		if s.Speaks(awsmodel.JSON) && target == s.TargetPrefix+"."+op {
			return true
		}
	}
	return false
}

// actionValues reads Action independently: every case of the key, in the
// query and in whatever of the body parses as a form.
func actionValues(r *Request) []string {
	var out []string
	for _, raw := range []string{r.URL.RawQuery, string(r.Body)} {
		values, _ := url.ParseQuery(raw)
		for k, vs := range values {
			if strings.EqualFold(k, "action") {
				out = append(out, vs...)
			}
		}
	}
	return out
}
