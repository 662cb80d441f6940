package awshmac

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// The screen routes as the framework does, anchored: a role whose name
// holds another path's pattern ("config", "roles") is screened as sign/,
// its limits applied and its headers=Name=value form read.
func TestScreenRoutesAnchored(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	h := map[string]any{}
	for i := range 65 {
		h[fmt.Sprintf("X-H%02d", i)] = "v"
	}
	for _, name := range []string{"myconfig", "config-x", "xroles"} {
		e.mustWrite(t, "roles/"+name, map[string]any{"sign_with": "key", "allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "127.0.0.1"})
		resp, err := e.request(t, logical.UpdateOperation, "sign/"+name, map[string]any{"url": "http://127.0.0.1/b/k", "service": "s3", "headers": h})
		if status(resp, err) != http.StatusBadRequest || errText(resp, err) != "headers: more than 64 header names" {
			t.Fatalf("sign/%s with 65 header names: %d %q", name, status(resp, err), errText(resp, err))
		}
		resp, err = e.request(t, logical.UpdateOperation, "sign/"+name, map[string]any{"url": "http://127.0.0.1/b/k", "service": "s3", "headers": []any{"X-A=1"}})
		if status(resp, err) != http.StatusOK || !strings.Contains(resp.Data["signed_headers"].(string), "x-a") {
			t.Fatalf("sign/%s with headers as pairs: %d %q", name, status(resp, err), errText(resp, err))
		}
	}
}
