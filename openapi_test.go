package awshmac

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Every path and operation describes itself: help text, a summary, and an
// OpenAPI operation ID, so `vault path-help` and Vault's OpenAPI are complete.
func TestPathsDescribeThemselves(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range e.b.Paths {
		if strings.TrimSpace(p.HelpSynopsis) == "" || strings.TrimSpace(p.HelpDescription) == "" {
			t.Errorf("%s: no help text", p.Pattern)
		}
		if p.DisplayAttrs == nil || p.DisplayAttrs.OperationPrefix != operationPrefix {
			t.Errorf("%s: no operation prefix", p.Pattern)
		}
		for op, h := range p.Operations {
			props := h.Properties()
			if props.Summary == "" || len(props.Responses) == 0 {
				t.Errorf("%s %s: no summary or responses", p.Pattern, op)
			}
		}
		for name, f := range p.Fields {
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("%s: field %s has no description", p.Pattern, name)
			}
		}
	}
	for _, path := range []string{"config", "roles/x", "roles/", "creds/x", "sign/x"} {
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: path, Storage: e.storage})
		if err != nil || resp == nil || resp.Data["help"] == "" {
			t.Errorf("path-help %s: %v %v", path, err, resp)
		}
	}
	doc := openAPI(t, e)
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for _, op := range []*framework.OASOperation{item.Get, item.Post, item.Delete} {
			if op == nil {
				continue
			}
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: missing or repeated operation ID %q", path, op.OperationID)
			}
			ids[op.OperationID] = true
		}
	}
	if len(ids) < 10 {
		t.Fatalf("only %d operations in the OpenAPI document", len(ids))
	}
}

func openAPI(t *testing.T, e *testEnv) *framework.OASDocument {
	t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "", Storage: e.storage})
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document: %T", resp.Data["openapi"])
	}
	return doc
}
