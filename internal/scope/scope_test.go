package scope

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// policies are the roles the cases sign for.
var policies = map[string]*Policy{
	"gci":     {Services: []string{"sts"}, Actions: []string{"sts:GetCallerIdentity"}},
	"iamlist": {Services: []string{"iam"}, Actions: []string{"iam:ListUsers"}},
	"stsany":  {Services: []string{"sts"}},
	"any":     {Services: []string{"*"}},
	"upload":  {Services: []string{"s3"}, Methods: []string{"PUT"}, Paths: []string{"/reports-bucket/*"}},
	"r2026":   {Services: []string{"s3"}, Paths: []string{"/reports-bucket/2026/*"}},
	"s3all":   {Services: []string{"s3"}, Actions: []string{"s3:*"}},
	"s3put":   {Services: []string{"s3"}, Actions: []string{"s3:PutObject"}},
	"s3acl":   {Services: []string{"s3"}, Actions: []string{"s3:PutObject", "s3:PutObjectAcl"}},
	"copy":    {Services: []string{"s3"}, Paths: []string{"/bucket-a/*"}},
	"copyact": {Services: []string{"s3"}, Actions: []string{"s3:CopyObject", "s3:PutObject"}},
	"api":     {Services: []string{"execute-api"}, Paths: []string{"/api/v1/*"}},
	"ddb":     {Services: []string{"dynamodb"}, Actions: []string{"dynamodb:GetItem", "dynamodb:Query"}},
	"ddbglob": {Services: []string{"dynamodb"}, Actions: []string{"dynamodb:Get*"}},
	"sqs":     {Services: []string{"sqs"}, Actions: []string{"sqs:SendMessage"}},
	"lambda":  {Services: []string{"lambda"}, Actions: []string{"lambda:Invoke"}},
	"lambdap": {Services: []string{"lambda"}, Paths: []string{"/2015-03-31/functions/f/*"}},
	"star":    {Services: []string{"*"}, Actions: []string{"*"}},
	"exact": {Services: []string{"*"}, Actions: []string{"s3express:CreateSession", "s3:CreateSession", "ecr:GetAuthorizationToken",
		"codeartifact:GetAuthorizationToken", "rds-db:connect", "elasticache:connect", "redshift:GetClusterCredentials",
		"ec2-instance-connect:SendSSHPublicKey", "ssm:StartSession", "dsql:DbConnect", "memorydb:connect", "kafka-cluster:Connect",
		"neptune-db:connect", "connect:GetFederationToken", "cognito-identity:GetCredentialsForIdentity", "s3:PutBucketPolicy"}},
	"globs":   {Services: []string{"*"}, Actions: []string{"ecr:*", "s3:*", "ssm:*", "redshift:Get*", "ec2-instance-connect:*", "codeartifact:*", "connect:*"}},
	"named":   {Services: []string{"myservice"}},
	"namedac": {Services: []string{"myservice"}, Actions: []string{"myservice:Do"}},
	"https":   {Services: []string{"sts"}, Actions: []string{"sts:GetCallerIdentity"}},
	"http":    {Services: []string{"sts"}, Actions: []string{"sts:GetCallerIdentity"}, Schemes: []string{"https", "http"}},
	"presign": {Services: []string{"s3"}, MaxPresignExpires: time.Hour},
	"minio":   {Services: []string{"s3"}, Hosts: []string{"minio.internal:9000"}, Paths: []string{"/reports-bucket/*"}},
}

// tcase is one request and the answer: 200 with the operation found, or
// 400/403 with a piece of the reason.
type tcase struct {
	name, policy string
	req          req
	status       int
	want         string // the operation (200) or a piece of the reason
}

// req describes a request compactly.
type req struct {
	method, url, service string
	header               map[string]string
	body                 *string // nil: no body
	hash                 string  // payload hash when the body is hidden
}

func (r req) build() *Request {
	u, err := url.Parse(r.url)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	for k, v := range r.header {
		for _, one := range strings.Split(v, "\n") {
			h.Add(k, one)
		}
	}
	out := &Request{Method: r.method, URL: u, Header: h, Service: r.service, Region: "us-east-1", PayloadHash: r.hash}
	if r.method == "" {
		out.Method = "GET"
	}
	if e := r.header["X-Test-Expires"]; e != "" {
		out.Header.Del("X-Test-Expires")
		out.Presign = true
		out.Expires, _ = time.ParseDuration(e)
	}
	if r.body != nil {
		out.Body = []byte(*r.body)
		sum := sha256.Sum256(out.Body)
		out.PayloadHash = hex.EncodeToString(sum[:])
	}
	return out
}

func s(v string) *string { return &v }

const formCT = "application/x-www-form-urlencoded"

func stsForm(body string) req {
	return req{method: "POST", url: "https://sts.amazonaws.com/", service: "sts", header: map[string]string{"Content-Type": formCT}, body: s(body)}
}

func stsQuery(q string) req { return req{url: "https://sts.amazonaws.com/?" + q, service: "sts"} }

func iamForm(body string) req {
	return req{method: "POST", url: "https://iam.amazonaws.com/", service: "iam", header: map[string]string{"Content-Type": formCT}, body: s(body)}
}

func jsonReq(host, service, target, body string) req {
	return req{method: "POST", url: "https://" + host + "/", service: service,
		header: map[string]string{"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}, body: s(body)}
}

func s3r(method, rawurl string, header ...string) req {
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return req{method: method, url: rawurl, service: "s3", header: h}
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := *policies[tc.policy]
			if p.Regions == nil {
				p.Regions = []string{"*"}
			}
			if p.Hosts == nil {
				p.Hosts = []string{"*"}
			}
			d, err := p.Check(tc.req.build())
			checkAnswer(t, tc, d, err)
		})
	}
}

func checkAnswer(t *testing.T, tc tcase, d Decision, err error) {
	t.Helper()
	if tc.status == http.StatusOK {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if d.Operation != tc.want {
			t.Fatalf("operation %q, want %q", d.Operation, tc.want)
		}
		return
	}
	se, ok := err.(*Error)
	if !ok {
		t.Fatalf("got %v (operation %q), want %d %q", err, d.Operation, tc.status, tc.want)
	}
	if se.Status != tc.status || !strings.Contains(se.Msg, tc.want) {
		t.Fatalf("got %d %q, want %d %q", se.Status, se.Msg, tc.status, tc.want)
	}
}

func TestCheck(t *testing.T) {
	var all []tcase
	for _, group := range [][]tcase{queryCases(), otherQueryCases(), jsonCases(), mintingCases(), s3OpCases(), s3HostCases(), extraS3, copyCases(), pathCases(), restCases(), targetCases()} {
		all = append(all, group...)
	}
	if len(all) < 200 {
		t.Fatalf("only %d cases", len(all))
	}
	runCases(t, all)
}

func init() {
	policies["copyvh"] = &Policy{Services: []string{"s3"}, Hosts: []string{"bucket-a.s3.us-east-1.amazonaws.com"}, Paths: []string{"/*"}}
	policies["cwlist"] = &Policy{Services: []string{"monitoring"}, Actions: []string{"monitoring:ListMetrics"}}
	policies["euw1"] = &Policy{Services: []string{"sts"}, Regions: []string{"eu-west-1"}, Actions: []string{"sts:GetCallerIdentity"}}
	policies["stshost"] = &Policy{Services: []string{"sts"}, Hosts: []string{"sts.amazonaws.com"}, Actions: []string{"sts:GetCallerIdentity"}}
	policies["subdomains"] = &Policy{Services: []string{"sts"}, Hosts: []string{"*.amazonaws.com"}, Actions: []string{"sts:GetCallerIdentity"}}
}
