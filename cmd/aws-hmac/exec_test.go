package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeCreds answers creds/<role> as the engine does.
func fakeCreds(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"access_key": "ASIAEXAMPLE", "secret_key": "s",
			"session_token": "t", "expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})
	}))
	t.Cleanup(s.Close)
	return s
}

// The child's env has no Vault variable, its token least of all, unless
// -keep-vault-env; the AWS key variables go either way.
func TestExecChildHasNoVaultEnv(t *testing.T) {
	vault := fakeCreds(t)
	t.Setenv("VAULT_ADDR", vault.URL)
	t.Setenv("VAULT_TOKEN", "hvs.parent-token")
	t.Setenv("VAULT_ROLE_ID", "role-id")
	t.Setenv("VAULT_SECRET_ID", "secret-id")
	t.Setenv("VAULT_AGENT_ADDR", vault.URL) // the client prefers it to VAULT_ADDR
	t.Setenv("AWS_SECRET_ACCESS_KEY", "must-not-reach-the-child")
	for _, keep := range []bool{false, true} {
		args := []string{"exec", "-role", "r"}
		if keep {
			args = append(args, "-keep-vault-env")
		}
		var out, errOut bytes.Buffer
		if code := run(append(args, "--", "env"), &out, &errOut); code != 0 {
			t.Fatalf("keep %v: exit %d: %s", keep, code, errOut.String())
		}
		env := out.String()
		hasVault := strings.Contains(env, "VAULT_")
		if hasVault != keep || strings.Contains(env, "AWS_SECRET_ACCESS_KEY") || !strings.Contains(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI=") {
			t.Fatalf("keep %v: the child's environment has Vault variables: %v", keep, hasVault)
		}
		if keep && (!strings.Contains(env, "VAULT_TOKEN=hvs.parent-token") || !strings.Contains(env, "VAULT_SECRET_ID=secret-id")) {
			t.Fatal("-keep-vault-env did not pass VAULT_TOKEN and VAULT_SECRET_ID on")
		}
	}
}

func TestExecHelpSaysWhatTheChildGets(t *testing.T) {
	var out, errOut bytes.Buffer
	run([]string{"exec", "-help"}, &out, &errOut)
	for _, want := range []string{"VAULT_TOKEN", "VAULT_ADDR", "-keep-vault-env", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_SECRET_ACCESS_KEY"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("exec -help does not name %s", want)
		}
	}
}
