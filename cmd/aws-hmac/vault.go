package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultFlags are the Vault CLI's connection flags, and the role.
type vaultFlags struct {
	address, namespace, caCert string
	mount, role                string
}

func (v *vaultFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&v.address, "address", "", "Vault's address; default VAULT_ADDR")
	fs.StringVar(&v.namespace, "namespace", "", "Vault namespace; default VAULT_NAMESPACE")
	fs.StringVar(&v.caCert, "ca-cert", "", "PEM CA certificate for Vault's TLS; default VAULT_CACERT")
	fs.StringVar(&v.mount, "mount", "aws-hmac", "the engine's mount path")
	fs.StringVar(&v.role, "role", "", "the role (required)")
}

// client is a Vault client configured as the vault CLI would be.
func (v *vaultFlags) client() (*api.Client, error) {
	if v.role == "" {
		return nil, errors.New("-role is required")
	}
	return v.newClient()
}

// newClient is client without a role: pod mode serves the roles pods name.
func (v *vaultFlags) newClient() (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	if v.address != "" {
		cfg.Address = v.address
	}
	if v.caCert != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: v.caCert}); err != nil {
			return nil, err
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if v.namespace != "" {
		c.SetNamespace(v.namespace)
	}
	if c.Token() == "" {
		c.SetToken(tokenFile())
	}
	return c, nil
}

// tokenFile is ~/.vault-token, as the vault CLI leaves it; empty when none.
func tokenFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(home, ".vault-token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// creds are STS credentials, in memory only.
type creds struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// readCreds mints credentials from creds/<role>, with a TTL when given.
func readCreds(ctx context.Context, c *api.Client, v *vaultFlags, ttl time.Duration) (creds, error) {
	path := v.mount + "/creds/" + v.role
	var s *api.Secret
	var err error
	if ttl > 0 {
		s, err = c.Logical().WriteWithContext(ctx, path, map[string]any{"ttl": ttl.String()})
	} else {
		s, err = c.Logical().ReadWithContext(ctx, path)
	}
	if err != nil {
		return creds{}, fmt.Errorf("%s: %w", path, err)
	}
	if s == nil || s.Data == nil {
		return creds{}, fmt.Errorf("%s: no credentials", path)
	}
	str := func(k string) string { v, _ := s.Data[k].(string); return v }
	exp, err := time.Parse(time.RFC3339, str("expiration"))
	if err != nil || str("access_key") == "" {
		return creds{}, fmt.Errorf("%s: the answer is not STS credentials", path)
	}
	return creds{AccessKeyID: str("access_key"), SecretAccessKey: str("secret_key"), SessionToken: str("session_token"), Expiration: exp}, nil
}
