package awsmodel

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The committed table is what the generator makes from its pinned source:
// regenerated here whenever the Go module proxy (or the module cache) can
// serve it, which CI's can.
func TestTableIsGenerated(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to run the generator")
	}
	out := filepath.Join(t.TempDir(), "models.txt")
	cmd := exec.Command("go", "run", "./gen", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("generator: %v\n%s", err, msg)
		}
		t.Skipf("the generator's source cannot be had here: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != table {
		t.Fatal("models.txt differs from what go generate makes: run go generate ./internal/awsmodel")
	}
}

func TestTableContents(t *testing.T) {
	if !strings.Contains(Source(), "aws-sdk-go@v1.55.8") {
		t.Fatalf("source %q", Source())
	}
	if n := len(SigningNames()); n < 300 {
		t.Fatalf("only %d signing names", n)
	}
	for name, want := range map[string]Protocol{"sts": Query, "iam": Query, "ec2": EC2, "dynamodb": JSON, "lambda": RESTJSON, "s3": RESTXML} {
		ss := Services(name)
		if len(ss) == 0 || ss[0].Protocols[0] != want {
			t.Errorf("%s: %v", name, ss)
		}
	}
	sqs := Services("sqs")[0]
	if !sqs.Speaks(JSON) || !sqs.Speaks(Query) || sqs.TargetPrefix != "AmazonSQS" {
		t.Errorf("sqs speaks %v with prefix %q, want json and query (awsQueryCompatible)", sqs.Protocols, sqs.TargetPrefix)
	}
	if len(Services("s3")) != 2 {
		t.Errorf("s3 signs two models (s3, s3control): %d", len(Services("s3")))
	}
	if op := Services("sts")[0].OperationFold("getcalleridentity"); op == nil || op.Name != "GetCallerIdentity" {
		t.Errorf("fold: %v", op)
	}
}

func s3() *Service {
	for _, s := range Services("s3") {
		if s.Model == "s3" {
			return s
		}
	}
	return nil
}

func TestRoute(t *testing.T) {
	has := func(names ...string) func(string) bool {
		return func(h string) bool {
			for _, n := range names {
				if n == h {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		method, path, query string
		headers             []string
		want                string // "" none, "?" ambiguous
	}{
		{"GET", "b/k", "", nil, "GetObject"},
		{"GET", "b/k/with/slashes", "", nil, "GetObject"},
		{"PUT", "b/k", "", nil, "PutObject"},
		{"PUT", "b/k", "", []string{"x-amz-copy-source"}, "CopyObject"},
		{"PUT", "b/k", "partNumber=1&uploadId=u", nil, "UploadPart"},
		{"PUT", "b/k", "partNumber=1&uploadId=u", []string{"x-amz-copy-source"}, "UploadPartCopy"},
		{"PUT", "b/k", "uploadId=u", nil, "PutObject"},
		{"GET", "b", "list-type=2", nil, "ListObjectsV2"},
		{"GET", "b", "list-type=1", nil, "ListObjects"},
		{"GET", "b", "", nil, "ListObjects"},
		{"PUT", "b", "policy", nil, "PutBucketPolicy"},
		{"PUT", "b", "lifecycle", nil, "PutBucketLifecycleConfiguration"},
		{"GET", "b", "acl&policy", nil, "?"},
		{"POST", "b/k", "uploads", nil, "CreateMultipartUpload"},
		{"POST", "b", "delete", nil, "DeleteObjects"},
		{"PATCH", "b/k", "", nil, ""},
		{"POST", "b/k", "", nil, ""},
	} {
		q, _ := url.ParseQuery(tc.query)
		op, amb := s3().Route(RouteRequest{Method: tc.method, Segments: strings.Split(tc.path, "/"), Query: q, HasHeader: has(tc.headers...)})
		got := ""
		switch {
		case amb:
			got = "?"
		case op != nil:
			got = op.Name
		}
		if got != tc.want {
			t.Errorf("%s /%s?%s %v: %q, want %q", tc.method, tc.path, tc.query, tc.headers, got, tc.want)
		}
	}
}
