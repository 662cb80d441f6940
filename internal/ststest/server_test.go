package ststest_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
)

// ListAccessKeys reports each of the caller's keys with its CreateDate,
// including keys an administrator made at a chosen time, and no other
// user's.
func TestListAccessKeysCreateDate(t *testing.T) {
	s := ststest.New()
	defer s.Close()
	id, secret := s.AddUser("vault")
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	admin, _ := s.AddUserKeyAt("vault", when)
	s.AddUserKeyAt("other", when)
	client := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	out, err := client.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for _, k := range out.AccessKeyMetadata {
		if aws.ToString(k.UserName) != "vault" {
			t.Fatalf("listed %s of user %s", aws.ToString(k.AccessKeyId), aws.ToString(k.UserName))
		}
		got[aws.ToString(k.AccessKeyId)] = aws.ToTime(k.CreateDate)
	}
	if len(got) != 2 || !got[admin].Equal(when) || time.Since(got[id]) > time.Minute {
		t.Fatalf("listed %v; the administrator's key %s at %s", got, admin, when)
	}
}
