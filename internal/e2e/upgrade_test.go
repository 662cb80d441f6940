package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

const upgradeMount = "aws-hmac-upgrade"

// TestUpgrade upgrades a mount as docs/upgrade.md says, from the previous
// commit's build to this tree's, while sign/, creds/ and role reads run:
// no call fails at any time; the config, the roles and the leases minted
// before are there after; the mount reports the new version; rolling back
// works the same way.
func TestUpgrade(t *testing.T) {
	root := repoRoot(t)
	prev := previousCommit(t, root)
	dir := t.TempDir()
	oldBin := buildPlugin(t, cloneAt(t, root, prev, filepath.Join(dir, "prev")), filepath.Join(dir, "old"))
	newBin := buildPlugin(t, root, filepath.Join(dir, "new"))
	newVersion := strings.TrimSpace(runOut(t, newBin, "-version"))

	w := &world{vault: testenv.StartVault(t, testenv.VaultOptions{FileStorage: true, LogLevel: "info"}), peer: ststest.New()}
	t.Cleanup(w.peer.Close)
	w.peer.AddRole(ststest.Role{ARN: roleARN, MaxSessionDuration: 2 * time.Hour})
	w.storeToken = w.transitStoreToken(t)
	w.secretForms = []string{w.storeToken}

	w.vault.RegisterPlugin(t, oldBin, pluginName) // as the plugin was registered before versions: no -version
	oldVersion := catalogVersion(t, w, "")
	if oldVersion == "" || oldVersion == newVersion {
		t.Fatalf("the previous commit's build reports %q, this tree's %q: no upgrade to test", oldVersion, newVersion)
	}
	t.Logf("upgrading %s (%s) to %s", prev[:12], oldVersion, newVersion)
	w.cli(t, "secrets", "enable", "-path="+upgradeMount, "-plugin-version="+oldVersion, pluginName)
	w.upgradeConfigure(t)
	before := w.upgradeState(t)
	leases := w.upgradeLeases(t, 3)
	if got := runningVersion(t, w); got != oldVersion {
		t.Fatalf("before the upgrade the mount runs %q, want %q", got, oldVersion)
	}

	w.underLoad(t, func() { w.upgradeTo(t, newBin, newVersion) })
	if got := runningVersion(t, w); got != newVersion {
		t.Fatalf("after the upgrade the mount runs %q, want %q", got, newVersion)
	}
	if after := w.upgradeState(t); after != before {
		t.Fatalf("config and roles changed across the upgrade:\nbefore %s\nafter  %s", before, after)
	}
	w.upgradeSignVerified(t)
	w.upgradeLeasesIntact(t, leases)

	// Rolling back is the same tune, to the old version, and a reload, here
	// of every mount of the plugin.
	w.underLoad(t, func() {
		w.cli(t, "secrets", "tune", "-plugin-version="+oldVersion, upgradeMount+"/")
		w.cli(t, "plugin", "reload", "-plugin="+pluginName, "-type=secret")
	})
	if got := runningVersion(t, w); got != oldVersion {
		t.Fatalf("after the rollback the mount runs %q, want %q", got, oldVersion)
	}
	w.upgradeSignVerified(t)
}

// upgradeTo is docs/upgrade.md's upgrade: the new binary beside the old one
// under a name of its own, registered under its version and SHA-256, the
// mount tuned to it, the mount reloaded.
func (w *world) upgradeTo(t *testing.T, bin, version string) {
	t.Helper()
	name := pluginName + "_" + version
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.vault.PluginDir, name), raw, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	w.cli(t, "plugin", "register", "-sha256="+hex.EncodeToString(sum[:]), "-command="+name, "-version="+version, "secret", pluginName)
	if got := catalogVersion(t, w, version); got != version {
		t.Fatalf("the catalog lists %q after registering %q", got, version)
	}
	w.cli(t, "secrets", "tune", "-plugin-version="+version, upgradeMount+"/")
	// This mount alone. (Vault 1.21's `vault plugin reload -mounts` sends
	// the root namespace's request to a path that does not exist.)
	w.cli(t, "write", "sys/plugins/reload/backend", "mounts="+upgradeMount+"/")
}

// upgradeConfigure: a transit key store, the STS peer, a role that mints
// and one that signs GetCallerIdentity for the peer.
func (w *world) upgradeConfigure(t *testing.T) {
	t.Helper()
	access, secret := w.peer.AddUser("vault")
	w.secretForms = append(w.secretForms, secret, "AWS4"+secret)
	w.cli(t, "write", upgradeMount+"/config", "access_key="+access, "secret_key="+secret, "key_store=transit",
		"transit_address="+w.vault.Addr, "transit_token="+w.storeToken, "transit_key_name=aws-hmac-upgrade",
		"sts_endpoint="+w.peer.URL, "region=us-east-1")
	w.cli(t, "write", upgradeMount+"/roles/deploy", "credential_type=assumed_role", "role_arns="+roleARN, "default_sts_ttl=15m")
	w.cli(t, "write", upgradeMount+"/roles/whoami", "allowed_services=sts", "allowed_regions=us-east-1",
		"allowed_hosts="+strings.TrimPrefix(w.peer.URL, "http://"), "allowed_actions=sts:GetCallerIdentity")
	w.upgradeSignVerified(t)
}

// upgradeState is the config and the roles as a read returns them.
func (w *world) upgradeState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"config", "roles/deploy", "roles/whoami"} {
		s, err := w.vault.Client.Logical().Read(upgradeMount + "/" + p)
		if err != nil || s == nil {
			t.Fatalf("read %s: %v", p, err)
		}
		// Fields that move by themselves (a token's TTL counts down).
		delete(s.Data, "transit_token_ttl")
		raw, _ := json.Marshal(s.Data)
		fmt.Fprintf(&b, "%s=%s ", p, raw)
	}
	list, err := w.vault.Client.Logical().List(upgradeMount + "/roles")
	if err != nil || list == nil {
		t.Fatalf("list roles: %v", err)
	}
	fmt.Fprintf(&b, "roles=%v", list.Data["keys"])
	return b.String()
}

// upgradeSignVerified: sign/ signs GetCallerIdentity, and the STS peer,
// which checks the signature, accepts it.
func (w *world) upgradeSignVerified(t *testing.T) {
	t.Helper()
	c := call{method: "GET", url: w.peer.URL + "/?" + gciForm, service: "sts"}
	s, err := w.vault.Client.Logical().Write(upgradeMount+"/sign/whoami", c.fields())
	if err != nil || s == nil {
		t.Fatalf("sign/whoami: %v", err)
	}
	var sig signed
	raw, _ := json.Marshal(s.Data)
	if err := json.Unmarshal(raw, &sig); err != nil {
		t.Fatal(err)
	}
	if code, out := c.send(t, sig); code != http.StatusOK || !strings.Contains(out, vaultUserID) {
		t.Fatalf("the STS peer answered %d to the request Vault signed: %s", code, out)
	}
}

// upgradeLeases mints n creds/ leases.
func (w *world) upgradeLeases(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		s, err := w.vault.Client.Logical().Read(upgradeMount + "/creds/deploy")
		if err != nil || s == nil || s.LeaseID == "" {
			t.Fatalf("creds/deploy: %v", err)
		}
		ids = append(ids, s.LeaseID)
	}
	return ids
}

// upgradeLeasesIntact: the leases minted before the upgrade are still
// Vault's; a renewal gets the lease's own refusal (STS credentials are not
// renewable), and the new plugin revokes them.
func (w *world) upgradeLeasesIntact(t *testing.T, ids []string) {
	t.Helper()
	sys := w.vault.Client.Sys()
	for _, id := range ids {
		if _, err := w.vault.Client.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": id}); err != nil {
			t.Fatalf("lease %s lost in the upgrade: %v", id, err)
		}
		_, err := sys.Renew(id, 60)
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "not renewable") {
			t.Fatalf("renewing lease %s: %v, want 400 not renewable", id, err)
		}
		if err := sys.Revoke(id); err != nil {
			t.Fatalf("revoking lease %s after the upgrade: %v", id, err)
		}
		if _, err := w.vault.Client.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": id}); err == nil {
			t.Fatalf("lease %s still there after its revocation", id)
		}
	}
}

// runningVersion is the version the upgrade mount's plugin reports.
func runningVersion(t *testing.T, w *world) string {
	t.Helper()
	mounts, err := w.vault.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts[upgradeMount+"/"]
	if !ok {
		t.Fatalf("no mount %s", upgradeMount)
	}
	return m.RunningVersion
}

// catalogVersion is the version of the plugin the catalog lists: want if
// listed, else the only one there.
func catalogVersion(t *testing.T, w *world, want string) string {
	t.Helper()
	list, err := w.vault.Client.Sys().ListPlugins(&api.ListPluginsInput{Type: api.PluginTypeSecrets})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, d := range list.Details {
		if d.Name == pluginName && !d.Builtin {
			versions = append(versions, d.Version)
		}
	}
	if want != "" && slices.Contains(versions, want) {
		return want
	}
	if len(versions) != 1 {
		t.Fatalf("the catalog lists %s as %q", pluginName, versions)
	}
	return versions[0]
}

// underLoad runs step while goroutines keep calling sign/, creds/ and
// reading a role, and for a moment after; every call must succeed.
func (w *world) underLoad(t *testing.T, step func()) {
	t.Helper()
	var stop atomic.Bool
	var calls, failures atomic.Int64
	var mu sync.Mutex
	var first []string
	load := func(name string, do func() error) {
		for !stop.Load() {
			err := do()
			calls.Add(1)
			if err != nil {
				failures.Add(1)
				mu.Lock()
				if len(first) < 5 {
					first = append(first, name+": "+redact(err.Error(), w))
				}
				mu.Unlock()
			}
		}
	}
	logical := w.vault.Client.Logical()
	sign := call{method: "GET", url: w.peer.URL + "/?" + gciForm, service: "sts"}.fields()
	work := map[string]func() error{
		"sign/whoami":   func() error { return nonEmpty(logical.Write(upgradeMount+"/sign/whoami", sign)) },
		"creds/deploy":  func() error { return nonEmpty(logical.Read(upgradeMount + "/creds/deploy")) },
		"roles/whoami":  func() error { return nonEmpty(logical.Read(upgradeMount + "/roles/whoami")) },
		"sign/whoami 2": func() error { return nonEmpty(logical.Write(upgradeMount+"/sign/whoami", sign)) },
	}
	var wg sync.WaitGroup
	for name, do := range work {
		wg.Go(func() { load(name, do) })
	}
	step()
	// The reload is done when the command returns; calls go on against the
	// new process until each kind has been answered by it a few times.
	atReload := calls.Load()
	for calls.Load() < atReload+int64(20*len(work)) && failures.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed during the upgrade; the first: %s", failures.Load(), calls.Load(), strings.Join(first, "; "))
	}
	t.Logf("%d calls during the step and after it, none failed", calls.Load())
}

func nonEmpty(s *api.Secret, err error) error {
	if err == nil && (s == nil || len(s.Data) == 0) {
		return errors.New("empty answer")
	}
	return err
}

// repoRoot is the module's git working tree.
func repoRoot(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(gitIn(t, ".", "rev-parse", "--show-toplevel"))
}

// previousCommit is HEAD~1. A shallow clone lacks it: under CI=true that is
// a failure (CI clones with full history), elsewhere a skip.
func previousCommit(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", "HEAD~1^{commit}").Output()
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("HEAD~1 is not in this clone (CI=true, so this is a failure): clone with full history")
		}
		t.Skip("HEAD~1 is not in this clone (shallow?): fetch the history to test upgrades")
	}
	return strings.TrimSpace(string(out))
}

// cloneAt checks commit out into dir: a clone sharing the repository's
// objects, so the repository itself is not touched.
func cloneAt(t *testing.T, root, commit, dir string) string {
	t.Helper()
	gitIn(t, root, "clone", "--quiet", "--shared", "--no-checkout", root, dir)
	gitIn(t, dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit)
	return dir
}

// buildPlugin builds the plugin of the module in src into dir, with the
// version stamped as `make build` stamps it.
func buildPlugin(t *testing.T, src, dir string, flags ...string) string {
	t.Helper()
	out := filepath.Join(dir, pluginName)
	args := append([]string{"build", "-buildvcs=auto", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, "./cmd/"+pluginName)...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", src, err, b)
	}
	return out
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = io.Discard
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

// TestUpgradeOverwriteInPlace is the upgrade docs/upgrade.md warns against:
// the new binary copied over the registered one. Vault runs a plugin only if
// its file has the SHA-256 it was registered with, so the next start of the
// process (a reload, a restart, a crash) fails and the mount answers 500
// (the reload's error names the checksum); registering the file under its own version and
// SHA-256, tuning the mount to it and reloading it recovers, config intact.
func TestUpgradeOverwriteInPlace(t *testing.T) {
	root := repoRoot(t)
	newBin := buildPlugin(t, root, filepath.Join(t.TempDir(), "new"))
	newVersion := strings.TrimSpace(runOut(t, newBin, "-version"))
	w := &world{vault: testenv.StartVault(t, testenv.VaultOptions{FileStorage: true, LogLevel: "info"}), peer: ststest.New()}
	t.Cleanup(w.peer.Close)
	w.peer.AddRole(ststest.Role{ARN: roleARN, MaxSessionDuration: 2 * time.Hour})
	w.storeToken = w.transitStoreToken(t)
	w.secretForms = []string{w.storeToken}
	// The installed version: this tree's build under a release version.
	oldBin := buildPlugin(t, root, filepath.Join(t.TempDir(), "old"), "-ldflags=-X github.com/awshmac/vault-plugin-aws-hmac/internal/version.override=v0.9.0")
	w.vault.RegisterPlugin(t, oldBin, pluginName)
	w.cli(t, "secrets", "enable", "-path="+upgradeMount, "-plugin-version=v0.9.0", pluginName)
	w.upgradeConfigure(t)
	before := w.upgradeState(t)

	raw, err := os.ReadFile(newBin)
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(w.vault.PluginDir, pluginName)
	if err := os.WriteFile(installed+".tmp", raw, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(installed+".tmp", installed); err != nil {
		t.Fatal(err)
	}
	w.upgradeSignVerified(t) // the running process is not affected yet
	if out, err := w.tryCLI("plugin", "reload", "-plugin="+pluginName, "-type=secret"); err == nil ||
		!strings.Contains(out, "Code: 500") || !strings.Contains(out, "checksums did not match") {
		t.Fatalf("reload after the overwrite: %v %s; want a 500, checksums did not match", err, out)
	}
	_, err = w.vault.Client.Logical().Write(upgradeMount+"/sign/whoami", call{method: "GET", url: w.peer.URL + "/?" + gciForm, service: "sts"}.fields())
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusInternalServerError {
		t.Fatalf("sign/ after the binary was overwritten and reloaded: %v, want a 500", err)
	}

	// The recovery: the file as it now is, under its own version.
	sum := sha256.Sum256(raw)
	w.cli(t, "plugin", "register", "-sha256="+hex.EncodeToString(sum[:]), "-command="+pluginName, "-version="+newVersion, "secret", pluginName)
	w.cli(t, "secrets", "tune", "-plugin-version="+newVersion, upgradeMount+"/")
	w.cli(t, "write", "sys/plugins/reload/backend", "mounts="+upgradeMount+"/")
	w.upgradeSignVerified(t)
	if got := runningVersion(t, w); got != newVersion {
		t.Fatalf("after the recovery the mount runs %q, want %q", got, newVersion)
	}
	if after := w.upgradeState(t); after != before {
		t.Fatalf("config and roles changed:\nbefore %s\nafter  %s", before, after)
	}
}
