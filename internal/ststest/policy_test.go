package ststest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

const policyRole = "arn:aws:iam::123456789012:role/app"

type peerEnv struct {
	s     *ststest.Server
	admin *iam.Client
	user  *sts.Client
}

func newPeerEnv(t *testing.T) *peerEnv {
	t.Helper()
	s := ststest.New()
	t.Cleanup(s.Close)
	id, secret := s.AddUser("vault")
	s.AddRole(ststest.Role{ARN: policyRole, PermissionsBoundary: "arn:aws:iam::123456789012:policy/boundary"})
	creds := credentials.NewStaticCredentialsProvider(id, secret, "")
	return &peerEnv{s: s,
		admin: iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL), Credentials: creds}),
		user:  sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL), Credentials: creds})}
}

// session assumes the role with a name and tags; it returns the session's IAM
// and STS clients and its aws:userid.
func (p *peerEnv) session(t *testing.T, name string, tags map[string]string) (*iam.Client, *sts.Client, string) {
	t.Helper()
	in := &sts.AssumeRoleInput{RoleArn: aws.String(policyRole), RoleSessionName: aws.String(name)}
	for k, v := range tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := p.user.AssumeRole(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	creds := credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken)
	return iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.s.URL), Credentials: creds, RetryMaxAttempts: 1}),
		sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.s.URL), Credentials: creds}),
		aws.ToString(out.AssumedRoleUser.AssumedRoleId)
}

func (p *peerEnv) put(name, doc string) error {
	_, err := p.admin.PutRolePolicy(context.Background(), &iam.PutRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	return err
}

func code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func works(c *iam.Client) error {
	_, err := c.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("app")})
	return err
}

func denyDoc(cond string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":` + cond + `}]}`
}

// A Deny on aws:userid refuses that session only, on every action but
// GetCallerIdentity (which IAM never evaluates); deleting it restores it.
func TestDenyUserID(t *testing.T) {
	p := newPeerEnv(t)
	a, aSTS, aID := p.session(t, "app-a", nil)
	b, _, bID := p.session(t, "app-b", nil)
	if aID == bID || !strings.HasPrefix(aID, "AROA") || strings.Split(aID, ":")[0] != strings.Split(bID, ":")[0] {
		t.Fatalf("aws:userid %s and %s: one role ID, two names expected", aID, bID)
	}
	if err := errors.Join(works(a), works(b)); err != nil {
		t.Fatal(err)
	}
	if err := p.put("revoked", denyDoc(`{"StringEquals":{"aws:userid":["`+aID+`"]}}`)); err != nil {
		t.Fatal(err)
	}
	if err := works(a); code(err) != "AccessDenied" {
		t.Fatalf("revoked session: %v", err)
	}
	if err := works(b); err != nil {
		t.Fatalf("other session: %v", err)
	}
	if _, err := aSTS.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("GetCallerIdentity is never denied: %v", err)
	}
	if _, err := p.admin.DeleteRolePolicy(context.Background(), &iam.DeleteRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("revoked")}); err != nil {
		t.Fatal(err)
	}
	if err := works(a); err != nil {
		t.Fatalf("after the policy went: %v", err)
	}
}

// A Deny on aws:TokenIssueTime and a principal tag refuses the tagged
// sessions issued before the time, not untagged ones nor later ones.
func TestDenyIssueTimeAndTag(t *testing.T) {
	p := newPeerEnv(t)
	tagged, _, _ := p.session(t, "t-1", map[string]string{"Mount": "m1"})
	other, _, _ := p.session(t, "t-2", map[string]string{"Mount": "m2"})
	untagged, _, _ := p.session(t, "t-3", nil)
	before := time.Now().UTC().Add(2 * time.Second).Truncate(time.Second).Format(time.RFC3339)
	doc := denyDoc(`{"StringEquals":{"aws:PrincipalTag/mount":"m1"},"DateLessThan":{"aws:TokenIssueTime":"` + before + `"}}`)
	if err := p.put("kill", doc); err != nil {
		t.Fatal(err)
	}
	if err := works(tagged); code(err) != "AccessDenied" {
		t.Fatalf("tagged session issued before: %v", err)
	}
	if err := errors.Join(works(other), works(untagged)); err != nil {
		t.Fatal(err)
	}
	past := denyDoc(`{"StringEquals":{"aws:PrincipalTag/Mount":"m1"},"DateLessThan":{"aws:TokenIssueTime":"2001-01-01T00:00:00Z"}}`)
	if err := p.put("kill", past); err != nil {
		t.Fatal(err)
	}
	if err := works(tagged); err != nil {
		t.Fatalf("a session issued after the time: %v", err)
	}
}

// Documents outside IAM's grammar, or with conditions the peer would not
// evaluate, are refused; an accepted one reads back intact.
func TestRolePolicyGrammar(t *testing.T) {
	p := newPeerEnv(t)
	bad := []string{
		`not json`,
		`{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`,
		`{"Version":"2008-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Block","Action":"*","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","NotAction":"s3:*","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"GetObject","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Principal":"*"}]}`,
		denyDoc(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`),
		denyDoc(`{"StringEquals":{"aws:SourceIp":"x"}}`),
		denyDoc(`{"DateLessThan":{"aws:TokenIssueTime":"yesterday"}}`),
		`{"Version":"2012-10-17","Extra":1,"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`,
	}
	for i, doc := range bad {
		if err := p.put("p", doc); code(err) != "MalformedPolicyDocument" {
			t.Errorf("document %d: %v", i, err)
		}
	}
	if names := p.s.RolePolicyNames(policyRole); len(names) != 0 {
		t.Fatalf("refused documents stored: %v", names)
	}
	good := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Sid\": \"A b\", \"Effect\": \"Deny\", \"NotAction\": [\"s3:Get*\"], \"Resource\": \"*\"," +
		" \"Condition\": {\"StringLike\": {\"aws:userid\": [\"AROA*:x+y=z,@.-\"]}}}]\n}"
	if err := p.put("p", good); err != nil {
		t.Fatal(err)
	}
	out, err := p.admin.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("p")})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.s.RolePolicy(policyRole, "p"); !ok || got != good || !strings.Contains(aws.ToString(out.PolicyDocument), "%7B%0A") {
		t.Fatalf("read back %q (answered %q)", got, aws.ToString(out.PolicyDocument))
	}
}

// The role's inline policies together may hold 10,240 characters,
// whitespace not counted; beyond, LimitExceeded and nothing changes.
func TestRolePolicyQuota(t *testing.T) {
	p := newPeerEnv(t)
	doc := func(n int) string {
		var ids []string
		for i := 0; i < n; i++ {
			ids = append(ids, fmt.Sprintf(`"AROAEXAMPLE:%08d"`, i))
		}
		return denyDoc(`{"StringEquals":{"aws:userid":[` + strings.Join(ids, ",") + `]}}`)
	}
	small := doc(215)
	if err := p.put("one", small); err != nil {
		t.Fatal(err)
	}
	spaced := strings.ReplaceAll(doc(215), ",", ",          ") // whitespace is free
	if err := p.put("two", spaced); err != nil {
		t.Fatal(err)
	}
	if err := p.put("three", doc(10)); code(err) != "LimitExceeded" {
		t.Fatalf("over the aggregate quota: %v", err)
	}
	if _, ok := p.s.RolePolicy(policyRole, "three"); ok {
		t.Fatal("a refused policy was stored")
	}
	if err := p.put("one", doc(150)); err != nil { // replacing counts the new size only
		t.Fatal(err)
	}
}
