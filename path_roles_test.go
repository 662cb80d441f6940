package awshmac

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRoleBadInput(t *testing.T) {
	e := newTestEnv(t)
	assumed := map[string]any{"credential_type": "assumed_role", "role_arns": testRoleARN}
	tests := []struct {
		name      string
		data      map[string]any
		wantField string
	}{
		{"credential fields on a sign-only role", map[string]any{"role_arns": testRoleARN}, "credential_type"},
		{"ttl on a sign-only role", map[string]any{"credential_type": "none", "max_sts_ttl": "1h"}, "credential_type"},
		{"sign with session on a sign-only role", map[string]any{"sign_with": "session"}, "sign_with"},
		{"unknown type", map[string]any{"credential_type": "iam_user"}, "credential_type"},
		{"assumed without arns", map[string]any{"credential_type": "assumed_role"}, "role_arns"},
		{"bad role arn", with(assumed, "role_arns", "arn:aws:iam::1234:role/x"), "role_arns"},
		{"user arn as role", with(assumed, "role_arns", "arn:aws:iam::123456789012:user/x"), "role_arns"},
		{"arns on session token", map[string]any{"credential_type": "session_token", "role_arns": testRoleARN}, "role_arns"},
		{"policy on session token", map[string]any{"credential_type": "session_token", "policy_document": "{}"}, "policy_document"},
		{"bad policy arn", with(assumed, "policy_arns", "arn:aws:s3:::bucket"), "policy_arns"},
		{"eleven policy arns", with(assumed, "policy_arns", "arn:aws:iam::aws:policy/P0,arn:aws:iam::aws:policy/P1,arn:aws:iam::aws:policy/P2,arn:aws:iam::aws:policy/P3,arn:aws:iam::aws:policy/P4,arn:aws:iam::aws:policy/P5,arn:aws:iam::aws:policy/P6,arn:aws:iam::aws:policy/P7,arn:aws:iam::aws:policy/P8,arn:aws:iam::aws:policy/P9,arn:aws:iam::aws:policy/P10"), "policy_arns"},
		{"policy not json", with(assumed, "policy_document", "{nope"), "policy_document"},
		{"policy too long", with(assumed, "policy_document", `{"a":"`+strings.Repeat("x", 2100)+`"}`), "policy_document"},
		{"tag key chars", with(assumed, "session_tags", "bad!key=v"), "session_tags"},
		{"tag value too long", with(assumed, "session_tags", "k="+strings.Repeat("v", 300)), "session_tags"},
		{"tag keys differ in case", with(assumed, "session_tags", "Team=a,team=b"), "session_tags"},
		{"transitive not a tag", with(assumed, "session_tags", "team=a", "transitive_tag_keys", "env"), "transitive_tag_keys"},
		{"transitive on federation", map[string]any{"credential_type": "federation_token", "transitive_tag_keys": "a"}, "transitive_tag_keys"},
		{"external id short", with(assumed, "external_id", "x"), "external_id"},
		{"source identity aws:", with(assumed, "source_identity", "aws:me"), "source_identity"},
		{"mfa serial short", with(assumed, "mfa_serial_number", "abc"), "mfa_serial_number"},
		{"mfa on federation", map[string]any{"credential_type": "federation_token", "mfa_serial_number": "arn:aws:iam::123456789012:mfa/x"}, "mfa_serial_number"},
		{"max ttl too long for role", with(assumed, "max_sts_ttl", "13h"), "max_sts_ttl"},
		{"max ttl too short", map[string]any{"credential_type": "session_token", "max_sts_ttl": "10m"}, "max_sts_ttl"},
		{"default above max", with(assumed, "default_sts_ttl", "2h", "max_sts_ttl", "1h"), "default_sts_ttl"},
		{"bad service", with(assumed, "allowed_services", "S3!"), "allowed_services"},
		{"bad region", with(assumed, "allowed_regions", "mars-1"), "allowed_regions"},
		{"bad host glob", with(assumed, "allowed_hosts", "s3.*.amazonaws.com"), "allowed_hosts"},
		{"bad name", with(assumed, "name", "x"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "roles/r1"
			if tt.name == "bad name" {
				path = "roles/" + strings.Repeat("n", 200)
			}
			resp, err := e.request(t, logical.UpdateOperation, path, tt.data)
			if err != nil {
				t.Fatalf("error instead of a 400: %v", err)
			}
			if resp == nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tt.wantField) {
				t.Fatalf("got %v, want a 400 naming %s", resp, tt.wantField)
			}
			if keys := storageKeys(t, e.storage); len(keys) != 0 {
				t.Fatalf("stored %v", keys)
			}
		})
	}
}

func TestRoleReadListUpdateDelete(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "roles/deploy", map[string]any{
		"credential_type": "assumed_role", "role_arns": testRoleARN, "session_tags": "team=platform",
		"transitive_tag_keys": "team", "max_sts_ttl": "2h", "allowed_services": "s3,sts",
	})
	e.mustWrite(t, "roles/deploy", map[string]any{"external_id": "partner-42"})
	resp, err := e.request(t, logical.ReadOperation, "roles/deploy", nil)
	if err != nil || resp == nil {
		t.Fatal(err)
	}
	d := resp.Data
	if d["external_id"] != "partner-42" || d["max_sts_ttl"] != int64(7200) || d["default_sts_ttl"] != int64(3600) ||
		len(d["role_arns"].([]string)) != 1 || d["session_tags"].(map[string]string)["team"] != "platform" {
		t.Fatalf("role: %v", d)
	}
	e.mustWrite(t, "roles/other", map[string]any{"credential_type": "session_token"})
	list, _ := e.request(t, logical.ListOperation, "roles/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 2 {
		t.Fatalf("list: %v", keys)
	}
	if _, err := e.request(t, logical.DeleteOperation, "roles/other", nil); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.request(t, logical.ReadOperation, "roles/other", nil); resp != nil {
		t.Fatal("role still there after delete")
	}
}
