package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// VaultOptions choose how the Vault server runs.
type VaultOptions struct {
	// FileStorage runs a real (non-dev) server with file storage, initialised
	// and unsealed, so tests can search the raw storage files.
	FileStorage bool
	// Audit enables a file audit device at AuditPath.
	Audit bool
	// LogLevel is the server's log level; default trace, so tests can
	// search everything it logs.
	LogLevel string
}

func (o VaultOptions) logLevel() string {
	if o.LogLevel == "" {
		return "trace"
	}
	return o.LogLevel
}

// Vault is a running Vault server.
type Vault struct {
	Addr       string
	Token      string // root token
	UnsealKey  string // file storage only
	Client     *api.Client
	Dir        string
	PluginDir  string
	StorageDir string // file storage only
	AuditPath  string // with Audit
	Process    *Process
}

// StartVault starts the pinned Vault server (VAULT_BIN, from `make tools`).
func StartVault(t testing.TB, opts VaultOptions) *Vault {
	t.Helper()
	bin := binary(t, "VAULT_BIN", "vault", "tools")
	dir := TempDir(t, "vault-")
	v := &Vault{Dir: dir, PluginDir: filepath.Join(dir, "plugins")}
	if err := os.MkdirAll(v.PluginDir, 0o700); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	v.Addr = "http://127.0.0.1:" + strconv.Itoa(port)
	v.launch(t, opts, bin, port)

	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken(v.Token)
	v.Client = client
	WaitFor(t, "vault", 2*time.Minute, v.Process, func() error {
		_, err := client.Sys().Health()
		return err
	})
	if opts.FileStorage {
		v.initialise(t)
	}
	v.waitActive(t)
	if opts.Audit {
		v.enableAudit(t)
	}
	return v
}

// launch starts the server: a dev server, or one with file storage.
func (v *Vault) launch(t testing.TB, opts VaultOptions, bin string, port int) {
	t.Helper()
	env := []string{"HOME=" + v.Dir, "VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=", "VAULT_LOG_LEVEL=trace"}
	logPath := filepath.Join(v.Dir, "vault.log")
	if !opts.FileStorage {
		v.Token = randomToken()
		v.Process = StartProcess(t, "vault", logPath, env, bin, "server", "-dev",
			"-dev-root-token-id="+v.Token, "-dev-listen-address=127.0.0.1:"+strconv.Itoa(port),
			"-dev-plugin-dir="+v.PluginDir, "-dev-no-store-token", "-log-level="+opts.logLevel())
		return
	}
	v.StorageDir = filepath.Join(v.Dir, "data")
	conf := fmt.Sprintf(`storage "file" { path = %q }
listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}
plugin_directory = %q
api_addr         = %q
disable_mlock    = true
log_level        = %q
`, v.StorageDir, port, v.PluginDir, v.Addr, opts.logLevel())
	confPath := filepath.Join(v.Dir, "vault.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	v.Process = StartProcess(t, "vault", logPath, env, bin, "server", "-config="+confPath)
}

// initialise initialises and unseals a file-storage server.
func (v *Vault) initialise(t testing.TB) {
	t.Helper()
	init, err := v.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault init: %v", err)
	}
	v.Token, v.UnsealKey = init.RootToken, init.Keys[0]
	v.Client.SetToken(v.Token)
	v.Unseal(t)
}

func (v *Vault) waitActive(t testing.TB) {
	t.Helper()
	WaitFor(t, "vault active", time.Minute, v.Process, func() error {
		h, err := v.Client.Sys().Health()
		if err != nil {
			return err
		}
		if h.Sealed || h.Standby {
			return errNotReady
		}
		return nil
	})
}

func (v *Vault) enableAudit(t testing.TB) {
	t.Helper()
	v.AuditPath = filepath.Join(v.Dir, "audit.log")
	if err := v.Client.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": v.AuditPath},
	}); err != nil {
		t.Fatalf("enable audit: %v", err)
	}
}

// Unseal unseals a file-storage server with its key.
func (v *Vault) Unseal(t testing.TB) {
	t.Helper()
	if _, err := v.Client.Sys().Unseal(v.UnsealKey); err != nil {
		t.Fatalf("vault unseal: %v", err)
	}
}

// RegisterPlugin copies a secrets plugin binary into the plugin directory
// and registers it in the catalog by SHA-256, with env for its process.
func (v *Vault) RegisterPlugin(t testing.TB, binaryPath, name string, env ...string) string {
	t.Helper()
	sum := copyPlugin(t, binaryPath, filepath.Join(v.PluginDir, name))
	if err := v.Client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: name, Type: api.PluginTypeSecrets, Command: name, SHA256: sum, Env: env,
	}); err != nil {
		t.Fatalf("register plugin %s: %v", name, err)
	}
	return sum
}

// CLIEnv is the environment for running the vault CLI against this server.
func (v *Vault) CLIEnv() []string {
	return []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token, "HOME=" + v.Dir}
}

func randomToken() string { return "test-" + randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
