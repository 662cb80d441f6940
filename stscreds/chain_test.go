package stscreds_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

// Chain assumes each hop with the previous session; the last gets the
// options, its duration capped at an hour, and AssumedRoleID names it.
func TestChain(t *testing.T) {
	srv, key := newPeer(t)
	hop := "arn:aws:iam::123456789012:role/hop"
	srv.AddRole(ststest.Role{ARN: hop, MaxSessionDuration: 4 * time.Hour})
	cfg := stscreds.Config{Key: key, Region: "eu-west-3", Endpoint: srv.URL}
	first, err := stscreds.NewAssumeRoleProvider(newClient(t, srv, key, nil), roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "s-1"
	}).Mint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hops := []stscreds.Hop{{RoleARN: "arn:aws:iam::123456789012:role/partner", ExternalID: "partner-42"}, {RoleARN: hop}}
	last, err := stscreds.Chain(context.Background(), cfg, first, hops, "s-1", stscreds.AssumeRoleOptions{Duration: 3 * time.Hour,
		Tags: []stscreds.Tag{{Key: "team", Value: "ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := callerARN(t, srv, last.Credentials); got != "arn:aws:sts::123456789012:assumed-role/hop/s-1" || got != last.ARN {
		t.Fatalf("chain ends as %s (%s)", got, last.ARN)
	}
	if !strings.HasPrefix(last.AssumedRoleID, "AROA") || !strings.HasSuffix(last.AssumedRoleID, ":s-1") {
		t.Fatalf("AssumedRoleID %q", last.AssumedRoleID)
	}
	if life := time.Until(last.Expires); life > time.Hour || life < 59*time.Minute {
		t.Fatalf("the last hop lives %v, want an hour", life)
	}
	if _, err := stscreds.Chain(context.Background(), cfg, first, []stscreds.Hop{{RoleARN: "arn:aws:iam::123456789012:role/partner"}}, "s-1", stscreds.AssumeRoleOptions{}); err == nil {
		t.Fatal("a hop without its external ID was accepted")
	}
}

// PermissionsBoundary, PutRolePolicy, RolePolicy and DeleteRolePolicy
// against the peer: the document reads back decoded and intact.
func TestRolePolicyCalls(t *testing.T) {
	srv, key := newPeer(t)
	bounded := "arn:aws:iam::123456789012:role/bounded"
	srv.AddRole(ststest.Role{ARN: bounded, PermissionsBoundary: "arn:aws:iam::123456789012:policy/b"})
	client, err := stscreds.NewIAMClient(stscreds.Config{Key: key, IAMEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if b, err := stscreds.PermissionsBoundary(ctx, client, bounded); err != nil || b != "arn:aws:iam::123456789012:policy/b" {
		t.Fatalf("boundary %q %v", b, err)
	}
	if b, err := stscreds.PermissionsBoundary(ctx, client, roleARN); err != nil || b != "" {
		t.Fatalf("no boundary: %q %v", b, err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:userid":["AROAX:a+b=c,d@e.f-g"]}}}]}`
	if err := stscreds.PutRolePolicy(ctx, client, bounded, "p", doc); err != nil {
		t.Fatal(err)
	}
	if got, found, err := stscreds.RolePolicy(ctx, client, bounded, "p"); err != nil || !found || got != doc {
		t.Fatalf("read back %q %v %v", got, found, err)
	}
	if err := stscreds.DeleteRolePolicy(ctx, client, bounded, "p"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := stscreds.RolePolicy(ctx, client, bounded, "p"); err != nil || found {
		t.Fatalf("after delete: %v %v", found, err)
	}
	if err := stscreds.DeleteRolePolicy(ctx, client, bounded, "p"); err != nil {
		t.Fatalf("deleting a policy already gone: %v", err)
	}
}
