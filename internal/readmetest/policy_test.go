package readmetest

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// policyRE finds the policies the README applies: `vault policy write NAME -
// <<'EOF'` with the policy up to EOF.
var policyRE = regexp.MustCompile(`(?s)vault policy write (\S+) - <<'EOF'\n(.*?)\nEOF`)

// Policies returns the Vault policies a README block writes, by name.
func Policies(blocks []Block) map[string]string {
	out := map[string]string{}
	for _, b := range blocks {
		if b.Lang != "sh" {
			continue
		}
		for _, m := range policyRE.FindAllStringSubmatch(b.Source, -1) {
			out[m[1]] = m[2]
		}
	}
	return out
}

// policyChecks is what each policy the README recommends must allow and
// refuse, as `vault token capabilities` reports it. Keys that hold AWS
// secrets must not become exportable: no config, export or backup for the
// plugin's token, whatever the key's name.
var policyChecks = map[string]map[string]string{
	"aws-hmac-transit": {
		"aws-hmac-transit/keys/aws-hmac-prod/config":                    "deny",
		"aws-hmac-transit/keys/aws-hmac-AKIAIOSFODNN7EXAMPLE/config":    "deny",
		"aws-hmac-transit/keys/other/config":                            "deny",
		"aws-hmac-transit/export/hmac-key/aws-hmac-prod":                "deny",
		"aws-hmac-transit/export/hmac-key/aws-hmac-prod/1":              "deny",
		"aws-hmac-transit/backup/aws-hmac-prod":                         "deny",
		"aws-hmac-transit/restore/aws-hmac-prod":                        "deny",
		"aws-hmac-transit/keys/aws-hmac-prod/rotate":                    "deny",
		"aws-hmac-transit/keys/aws-hmac-prod/trim":                      "deny",
		"aws-hmac-transit/keys/aws-hmac-prod/import":                    "update",
		"aws-hmac-transit/keys/aws-hmac-prod/import_version":            "update",
		"aws-hmac-transit/keys/aws-hmac-prod":                           "read",
		"aws-hmac-transit/hmac/aws-hmac-prod":                           "update",
		"aws-hmac-transit/hmac/aws-hmac-prod/sha2-256":                  "update",
		"aws-hmac-transit/wrapping_key":                                 "read",
		"aws-hmac-transit/decrypt/aws-hmac-kek":                         "deny",
		"transit/keys/aws-hmac-prod/config":                             "deny",
		"sys/mounts/aws-hmac-transit/tune":                              "deny",
		"aws-hmac-transit/keys/aws-hmac-prod/import/../config":          "deny",
		"aws-hmac-transit/keys/aws-hmac-AKIAIOSFODNN7EXAMPLE/importing": "deny",
	},
	"aws-hmac-kek": {
		"aws-hmac-transit/encrypt/aws-hmac-kek":      "update",
		"aws-hmac-transit/decrypt/aws-hmac-kek":      "update",
		"aws-hmac-transit/keys/aws-hmac-kek/config":  "deny",
		"aws-hmac-transit/export/encryption-key/kek": "deny",
		"aws-hmac-transit/hmac/aws-hmac-prod":        "deny",
	},
	"deployer": {
		"aws-hmac/creds/deploy":  "read, update",
		"aws-hmac/creds/DEPLOY":  "deny",
		"aws-hmac/creds/deploy2": "deny",
		"aws-hmac/sts/deploy":    "deny",
		"aws-hmac/sign/deploy":   "deny",
		"aws-hmac/roles/deploy":  "deny",
		"aws-hmac/config":        "deny",
	},
	"reports-reader": {
		"aws-hmac/sign/reports-read":      "update",
		"aws-hmac/sign/reports-read-all":  "deny",
		"aws-hmac/sign/reports-read/x":    "deny",
		"aws-hmac/creds/reports-read":     "deny",
		"aws-hmac/roles/reports-read":     "deny",
		"aws-hmac/config/rotate-root":     "deny",
		"aws-hmac-hsm/sign/reports-read":  "deny",
		"aws-hmac/sign/reports-read/../x": "deny",
	},
	"aws-hmac-admin": {
		"aws-hmac/config":             "create, delete, read, update",
		"aws-hmac/config/rotate-root": "update",
		"aws-hmac/config/attestation": "read",
		"aws-hmac/roles":              "list",
		"aws-hmac/roles/deploy":       "create, delete, read, update",
		"aws-hmac/roles/deploy/x":     "deny",
		"aws-hmac/creds/deploy":       "deny",
		"aws-hmac/sign/reports-read":  "deny",
	},
}

// TestREADMEPolicies writes every policy the README applies into a real
// Vault and checks, with `vault token capabilities`, what a token holding it
// may do: the README's own transit policy must deny the key's config.
func TestREADMEPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault")
	}
	policies := Policies(readmeBlocks(t))
	var names, checked []string
	for name := range policies {
		names = append(names, name)
	}
	for name := range policyChecks {
		checked = append(checked, name)
	}
	slices.Sort(names)
	slices.Sort(checked)
	if !slices.Equal(names, checked) {
		t.Fatalf("the README writes policies %v; the test checks %v: every recommended policy needs its checks", names, checked)
	}
	v := testenv.StartVault(t, testenv.VaultOptions{LogLevel: "warn"})
	for name, hcl := range policies {
		if err := v.Client.Sys().PutPolicy(name, hcl); err != nil {
			t.Fatalf("policy %s from the README: %v", name, err)
		}
		tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, NoDefaultPolicy: true})
		if err != nil {
			t.Fatal(err)
		}
		for path, want := range policyChecks[name] {
			if got := capabilities(t, v, tok.Auth.ClientToken, path); got != want {
				t.Errorf("policy %s: vault token capabilities %s = %q, want %q", name, path, got, want)
			}
		}
	}
}

// capabilities runs the vault CLI as an operator would.
func capabilities(t *testing.T, v *testenv.Vault, token, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv("VAULT_BIN"), "token", "capabilities", token, path)
	cmd.Env = append(os.Environ(), v.CLIEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vault token capabilities %s: %v\n%s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}
