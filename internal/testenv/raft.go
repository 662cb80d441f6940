package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// RaftCluster is Vault servers on integrated (Raft) storage, on 127.0.0.1
// with random ports, initialised and unsealed: one active, the rest
// standbys forwarding to it.
type RaftCluster struct {
	Nodes     []*RaftNode
	Token     string // root token
	UnsealKey string
	AuditPath string // shared by the nodes: whichever is active writes it
}

// RaftNode is one server: its own data and plugin directories, and the
// process environment its plugins inherit.
type RaftNode struct {
	ID         string
	Addr       string
	Dir        string
	PluginDir  string
	StorageDir string
	Client     *api.Client
	Process    *Process

	t       testing.TB
	bin     string
	conf    string
	env     []string
	logPath string
}

// StartRaftCluster starts n servers concurrently, each with env(i) in its
// process environment, joins them, and waits for one active node.
func StartRaftCluster(t testing.TB, n int, env func(i int) []string) *RaftCluster {
	t.Helper()
	bin := binary(t, "VAULT_BIN", "vault", "tools")
	c := &RaftCluster{}
	ports := make([]int, 2*n)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	leaderAddr := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	for i := range n {
		c.Nodes = append(c.Nodes, newRaftNode(t, bin, i, ports[2*i], ports[2*i+1], leaderAddr, env(i)))
	}
	for _, node := range c.Nodes { // concurrently: each is polled below
		node.launch()
	}
	for _, node := range c.Nodes {
		node.waitUp()
	}
	c.initialise(t)
	for _, node := range c.Nodes[1:] {
		node.Unseal(c.UnsealKey)
	}
	c.WaitHealthy(t, n)
	return c
}

func newRaftNode(t testing.TB, bin string, i, port, clusterPort int, leaderAddr string, env []string) *RaftNode {
	t.Helper()
	dir := TempDir(t, "raft-"+strconv.Itoa(i)+"-")
	node := &RaftNode{ID: "node" + strconv.Itoa(i), Addr: "http://127.0.0.1:" + strconv.Itoa(port), Dir: dir,
		PluginDir: filepath.Join(dir, "plugins"), StorageDir: filepath.Join(dir, "raft"), t: t, bin: bin,
		logPath: filepath.Join(dir, "vault.log")}
	node.env = append([]string{"HOME=" + dir, "VAULT_ADDR=" + node.Addr, "VAULT_TOKEN=", "VAULT_LOG_LEVEL=trace"}, env...)
	for _, d := range []string{node.PluginDir, node.StorageDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	join := ""
	if node.Addr != leaderAddr {
		join = fmt.Sprintf("retry_join { leader_api_addr = %q }", leaderAddr)
	}
	conf := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = %q
  %s
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
plugin_directory = %q
api_addr         = %q
cluster_addr     = "https://127.0.0.1:%d"
disable_mlock    = true
log_level        = "trace"
`, node.StorageDir, node.ID, join, port, clusterPort, node.PluginDir, node.Addr, clusterPort)
	node.conf = filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(node.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.Address = node.Addr
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	node.Client = client
	return node
}

// Start (re)starts the server on its data; it comes up sealed.
func (n *RaftNode) Start() {
	n.t.Helper()
	n.launch()
	n.waitUp()
}

func (n *RaftNode) launch() {
	n.Process = StartProcess(n.t, "vault "+n.ID, n.logPath, n.env, n.bin, "server", "-config="+n.conf)
}

func (n *RaftNode) waitUp() {
	n.t.Helper()
	WaitFor(n.t, "vault "+n.ID, 2*time.Minute, n.Process, func() error {
		_, err := n.Client.Sys().SealStatus()
		return err
	})
}

// Kill ends the server abruptly, as a crash or a power cut would.
func (n *RaftNode) Kill() { n.Process.Kill() }

// Unseal unseals the node, once it has joined the cluster.
func (n *RaftNode) Unseal(key string) {
	n.t.Helper()
	WaitFor(n.t, "vault "+n.ID+" unsealed", 2*time.Minute, n.Process, func() error {
		st, err := n.Client.Sys().Unseal(key)
		if err != nil {
			return err
		}
		if st.Sealed {
			return errNotReady
		}
		return nil
	})
}

func (c *RaftCluster) initialise(t testing.TB) {
	t.Helper()
	first := c.Nodes[0]
	init, err := first.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault init: %v", err)
	}
	c.Token, c.UnsealKey = init.RootToken, init.Keys[0]
	for _, node := range c.Nodes {
		node.Client.SetToken(c.Token)
	}
	first.Unseal(c.UnsealKey)
	// Autopilot makes a joined node a voter once it has been healthy this
	// long (10s by default); a cluster of non-voters cannot lose its leader.
	leader := c.Leader(t)
	if _, err := leader.Client.Logical().Write("sys/storage/raft/autopilot/configuration", map[string]any{
		"server_stabilization_time": "1s", "cleanup_dead_servers": false,
	}); err != nil {
		t.Fatalf("autopilot configuration: %v", err)
	}
}

// WaitHealthy waits until want nodes are unsealed members and one of
// them is active.
func (c *RaftCluster) WaitHealthy(t testing.TB, want int) {
	t.Helper()
	WaitFor(t, "raft cluster of "+strconv.Itoa(want), 2*time.Minute, nil, func() error {
		up := 0
		for _, node := range c.Nodes {
			if node.Process.Exited() {
				continue
			}
			if st, err := node.Client.Sys().SealStatus(); err == nil && !st.Sealed {
				up++
			}
		}
		if up < want {
			return errNotReady
		}
		leader, err := c.leader()
		if err != nil {
			return err
		}
		return votersAtLeast(leader, want)
	})
}

// votersAtLeast: the Raft configuration has want voters.
func votersAtLeast(leader *RaftNode, want int) error {
	s, err := leader.Client.Logical().Read("sys/storage/raft/configuration")
	if err != nil || s == nil {
		return errNotReady
	}
	cfg, _ := s.Data["config"].(map[string]any)
	servers, _ := cfg["servers"].([]any)
	voters := 0
	for _, srv := range servers {
		if m, ok := srv.(map[string]any); ok && m["voter"] == true {
			voters++
		}
	}
	if voters < want {
		return fmt.Errorf("%d of %d voters", voters, want)
	}
	return nil
}

// Leader waits for a node that says it is active, and returns it.
func (c *RaftCluster) Leader(t testing.TB) *RaftNode {
	t.Helper()
	var found *RaftNode
	WaitFor(t, "an active vault node", 2*time.Minute, nil, func() error {
		var err error
		found, err = c.leader()
		return err
	})
	return found
}

var errNoLeader = errors.New("no active node")

func (c *RaftCluster) leader() (*RaftNode, error) {
	for _, node := range c.Nodes {
		if node.Process.Exited() {
			continue
		}
		l, err := node.Client.Sys().Leader()
		if err == nil && l.IsSelf && l.HAEnabled {
			if h, err := node.Client.Sys().Health(); err == nil && !h.Standby && !h.Sealed {
				return node, nil
			}
		}
	}
	return nil, errNoLeader
}

// RegisterPlugin copies the plugin binary into every node's plugin
// directory and registers it once, by SHA-256, through the active node:
// the catalog, and env, are the cluster's.
func (c *RaftCluster) RegisterPlugin(t testing.TB, binaryPath, name string, env ...string) {
	t.Helper()
	var sum string
	for _, node := range c.Nodes {
		sum = copyPlugin(t, binaryPath, filepath.Join(node.PluginDir, name))
	}
	if err := c.Leader(t).Client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: name, Type: api.PluginTypeSecrets, Command: name, SHA256: sum, Env: env,
	}); err != nil {
		t.Fatalf("register plugin %s: %v", name, err)
	}
}

// EnableAudit adds a file audit device whose file all nodes share.
func (c *RaftCluster) EnableAudit(t testing.TB) {
	t.Helper()
	c.AuditPath = filepath.Join(TempDir(t, "raft-audit-"), "audit.log")
	if err := c.Leader(t).Client.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": c.AuditPath},
	}); err != nil {
		t.Fatalf("enable audit: %v", err)
	}
}

// CLIEnv is the environment for running the vault CLI against node n.
func (c *RaftCluster) CLIEnv(n *RaftNode) []string {
	return []string{"VAULT_ADDR=" + n.Addr, "VAULT_TOKEN=" + c.Token, "HOME=" + n.Dir}
}

// LogPath is the node's server log, where its plugins' logs go too.
func (n *RaftNode) LogPath() string { return n.logPath }

// copyPlugin copies the binary to dst, executable, and returns its SHA-256.
func copyPlugin(t testing.TB, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
