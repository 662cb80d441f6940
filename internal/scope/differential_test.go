package scope_test

// A differential test: the operation the scope reads from a request must be
// the operation the AWS SDK serialised it as. Requests are built by
// aws-sdk-go-v2's own clients for every operation they have, captured
// before they leave the machine, and never sent.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/awsmodel"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/scope"
)

const diffRegion = "us-east-1"

var errNotSent = errors.New("differential test: request captured, not sent")

// capture is both the clients' HTTP client, which keeps the request instead
// of sending it, and a middleware that keeps the SDK's own operation name.
type capture struct {
	op   string
	req  *http.Request
	body []byte
}

func (c *capture) Do(r *http.Request) (*http.Response, error) {
	c.req, c.body = r, nil
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		c.body = b
	}
	return nil, errNotSent
}

func (c *capture) addMiddleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("DifferentialOperationName",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.op = middleware.GetOperationName(ctx)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *capture) reset() { *c = capture{} }

// sdkClient is one service client and the signing name it signs with.
type sdkClient struct {
	label, service string
	client         any
	cap            *capture
}

// diffClients are the clients as the SDK configures them by default: the
// region's real endpoint, no endpoint override; retries off, since every
// send fails on purpose.
func diffClients() []sdkClient {
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	api := func(c *capture) []func(*middleware.Stack) error {
		return []func(*middleware.Stack) error{c.addMiddleware}
	}
	var out []sdkClient
	add := func(label, service string, c *capture, client any) {
		out = append(out, sdkClient{label: label, service: service, client: client, cap: c})
	}
	for _, pathStyle := range []bool{false, true} {
		c, label := &capture{}, "s3 virtual-hosted"
		if pathStyle {
			label = "s3 path-style"
		}
		add(label, "s3", c, s3.New(s3.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}, UsePathStyle: pathStyle}))
	}
	c := &capture{}
	add("sts", "sts", c, sts.New(sts.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}}))
	c = &capture{}
	add("iam", "iam", c, iam.New(iam.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}}))
	c = &capture{}
	add("dynamodb", "dynamodb", c, dynamodb.New(dynamodb.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}}))
	c = &capture{}
	add("lambda", "lambda", c, lambda.New(lambda.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}}))
	c = &capture{}
	add("sqs", "sqs", c, sqs.New(sqs.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}}))
	c = &capture{}
	add("kms", "kms", c, kms.New(kms.Options{Region: diffRegion, Credentials: creds, HTTPClient: c, APIOptions: api(c), Retryer: aws.NopRetryer{}}))
	return out
}

// operations are the client's methods shaped as operations:
// func(ctx, *XInput, ...func(*Options)) (*XOutput, error).
func operations(client any) []reflect.Method {
	t := reflect.TypeOf(client)
	ctxType := reflect.TypeOf((*context.Context)(nil)).Elem()
	errType := reflect.TypeOf((*error)(nil)).Elem()
	var out []reflect.Method
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		ft := m.Type
		if ft.NumIn() != 4 || !ft.IsVariadic() || ft.In(1) != ctxType || ft.NumOut() != 2 || ft.Out(1) != errType {
			continue
		}
		in, outT := ft.In(2), ft.Out(0)
		if in.Kind() != reflect.Pointer || in.Elem().Name() != m.Name+"Input" ||
			outT.Kind() != reflect.Pointer || outT.Elem().Name() != m.Name+"Output" {
			continue
		}
		out = append(out, m)
	}
	return out
}

// fieldValues are plausible values where a field's format matters to the
// scope or the SDK: an S3 key with a folder, a copy source as /bucket/key.
var fieldValues = map[string]string{
	"Key":        "dir/abc123.txt",
	"CopySource": "abc123/dir/abc123.txt",
	"QueueUrl":   "https://sqs.us-east-1.amazonaws.com/123456789012/abc123",
}

// interfaceValues are members of union types, which reflection cannot
// invent.
var interfaceValues = map[reflect.Type]func() any{
	reflect.TypeOf((*ddbtypes.AttributeValue)(nil)).Elem(): func() any { return &ddbtypes.AttributeValueMemberS{Value: "abc123"} },
	reflect.TypeOf((*io.Reader)(nil)).Elem():               func() any { return bytes.NewReader([]byte("abc123")) },
	reflect.TypeOf((*s3types.ObjectEncryption)(nil)).Elem(): func() any {
		return &s3types.ObjectEncryptionMemberSSEKMS{Value: s3types.SSEKMSEncryption{KMSKeyArn: aws.String("abc123")}}
	},
}

var timeType = reflect.TypeOf(time.Time{})

// fill sets v to a plausible non-empty value; depth bounds recursive
// shapes. It reports whether it set anything.
func fill(v reflect.Value, name string, depth int) bool {
	t := v.Type()
	if depth > 12 {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if !fill(p.Elem(), name, depth) {
			return false
		}
		v.Set(p)
	case reflect.String:
		v.SetString(stringValue(t, name))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		return fillSlice(v, name, depth)
	case reflect.Map:
		return fillMap(v, name, depth)
	case reflect.Struct:
		return fillStruct(v, depth)
	case reflect.Interface:
		mk, ok := interfaceValues[t]
		if !ok {
			return false
		}
		v.Set(reflect.ValueOf(mk()))
	default:
		return false
	}
	return true
}

// stringValue: an enum's first value, else a plain token.
func stringValue(t reflect.Type, name string) string {
	if s, ok := fieldValues[name]; ok {
		return s
	}
	if m, ok := t.MethodByName("Values"); ok && m.Type.NumIn() == 1 {
		vals := m.Func.Call([]reflect.Value{reflect.Zero(t)})[0]
		if vals.Kind() == reflect.Slice && vals.Len() > 0 {
			return vals.Index(0).String()
		}
	}
	return "abc123"
}

func fillSlice(v reflect.Value, name string, depth int) bool {
	if v.Type().Elem().Kind() == reflect.Uint8 {
		v.SetBytes([]byte("{}"))
		return true
	}
	e := reflect.New(v.Type().Elem()).Elem()
	if !fill(e, name, depth+1) {
		return false
	}
	v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), e))
	return true
}

func fillMap(v reflect.Value, name string, depth int) bool {
	t := v.Type()
	k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
	if !fill(k, "", depth+1) || !fill(e, name, depth+1) {
		return false
	}
	m := reflect.MakeMap(t)
	m.SetMapIndex(k, e)
	v.Set(m)
	return true
}

func fillStruct(v reflect.Value, depth int) bool {
	t := v.Type()
	if t == timeType {
		v.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)))
		return true
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if depth > 0 {
			name = "" // fieldValues are for an input's own fields, not a tag's Key
		}
		fill(v.Field(i), name, depth+1)
	}
	return true
}

// captured is one request the SDK serialised, with its operation name.
type captured struct {
	op   string
	req  *http.Request
	body []byte
}

// serialise runs one operation with a filled input; err is why the SDK did
// not get as far as sending it.
func serialise(c sdkClient, m reflect.Method) (captured, error) {
	in := reflect.New(m.Type.In(2).Elem())
	fillStruct(in.Elem(), 0)
	c.cap.reset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := m.Func.Call([]reflect.Value{reflect.ValueOf(c.client), reflect.ValueOf(ctx), in})
	err, _ := out[1].Interface().(error)
	switch {
	case c.cap.req == nil && err != nil:
		return captured{}, err
	case c.cap.req == nil:
		return captured{}, errors.New("no request sent")
	case err == nil || !errors.Is(err, errNotSent):
		return captured{}, fmt.Errorf("the send did not fail as the capture does: %v", err)
	}
	return captured{op: c.cap.op, req: c.cap.req, body: c.cap.body}, nil
}

// signedAs reads service and region from the request's credential scope,
// as the SDK signed it; an unsigned request keeps the client's.
func signedAs(r *http.Request, service string) (string, string) {
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return service, diffRegion
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return service, diffRegion
	}
	return parts[3], parts[2]
}

func scopeRequest(c captured, service string) *scope.Request {
	hash := c.req.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		sum := sha256.Sum256(c.body)
		hash = hex.EncodeToString(sum[:])
	}
	var body []byte
	if len(c.body) > 0 {
		body = c.body
	}
	svc, region := signedAs(c.req, service)
	return &scope.Request{Method: c.req.Method, URL: c.req.URL, Header: c.req.Header, Body: body,
		PayloadHash: hash, Service: svc, Region: region}
}

// listing is the policy's allowed_actions for one request: the SDK's
// operation itself, exactly, so that an authority operation is allowed when
// it is what the SDK sent, and what its headers need besides (a copy source
// is read; ACL headers need the ACL action).
func listing(r *scope.Request, op string) []string {
	acts := []string{r.Service + ":" + op}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		acts = append(acts, r.Service+":GetObject")
	}
	for name := range r.Header {
		if l := strings.ToLower(name); l == "x-amz-acl" || strings.HasPrefix(l, "x-amz-grant-") {
			acts = append(acts, r.Service+":PutObjectAcl", r.Service+":PutBucketAcl")
			break
		}
	}
	return acts
}

// inModels reports whether the model table knows the operation, under the
// client's signing name: S3 signs a few operations with another
// (s3express, s3-object-lambda), which the scope must still place.
func inModels(service, op string) bool {
	for _, s := range awsmodel.Services(service) {
		if s.Operation(op) != nil {
			return true
		}
	}
	return false
}

// diffCounts are one client's tallies.
type diffCounts struct {
	compared, skipped, newer int
	skips, newers            []string
}

func describe(r *scope.Request) string {
	return fmt.Sprintf("%s %s (host %s, X-Amz-Target %q, Content-Type %q)",
		r.Method, r.URL.RequestURI(), r.URL.Host, r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"))
}

// compareOne serialises one operation and checks where the scope places
// it, counting it as compared, skipped or newer than the models.
func compareOne(t *testing.T, c sdkClient, m reflect.Method, n *diffCounts) {
	t.Helper()
	cp, err := serialise(c, m)
	if err != nil {
		n.skipped++
		n.skips = append(n.skips, m.Name+": "+strings.Join(strings.Fields(err.Error()), " "))
		return
	}
	if cp.op != m.Name {
		t.Errorf("%s: the middleware stack names the operation %q, the method %q", c.label, cp.op, m.Name)
	}
	r := scopeRequest(cp, c.service)
	if !inModels(c.service, cp.op) {
		n.newer++
		n.newers = append(n.newers, cp.op)
		return
	}
	n.compared++
	p := &scope.Policy{Services: []string{"*"}, Regions: []string{"*"}, Hosts: []string{"*"}, Actions: listing(r, cp.op)}
	d, err := p.Check(r)
	switch {
	case d.Operation != cp.op:
		t.Errorf("%s: SDK %s, scope %q (err: %v): %s", c.label, cp.op, d.Operation, err, describe(r))
	case err != nil:
		t.Errorf("%s: SDK %s placed right but refused: %v: %s", c.label, cp.op, err, describe(r))
	}
}

func TestDifferentialSDKOperations(t *testing.T) {
	total := 0
	byService := map[string]int{}
	for _, c := range diffClients() {
		var n diffCounts
		for _, m := range operations(c.client) {
			compareOne(t, c, m, &n)
		}
		total += n.compared
		byService[c.service] += n.compared
		sort.Strings(n.newers)
		t.Logf("%s: %d compared, %d skipped, %d newer than the models %v", c.label, n.compared, n.skipped, n.newer, n.newers)
		for _, s := range n.skips {
			t.Logf("%s: skipped %s", c.label, s)
		}
	}
	for _, s := range []string{"s3", "sts", "iam", "dynamodb", "lambda", "sqs", "kms"} {
		if byService[s] == 0 {
			t.Errorf("%s: no request compared", s)
		}
	}
	if total < 300 {
		t.Errorf("%d requests compared, want at least 300", total)
	}
}
