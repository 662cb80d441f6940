package version

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const module = "github.com/awshmac/vault-plugin-aws-hmac"

// TestBuiltVersionIsGits builds the plugin and the helper as `make build`
// does and checks that both print the version git gives the tree they were
// built from. The tree may change under a concurrent edit or commit between
// the build and the look at git: then the build is repeated.
func TestBuiltVersionIsGits(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	root := strings.TrimSpace(gitOut(t, ".", "rev-parse", "--show-toplevel"))
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		// Go stamps version control information only where .git is a
		// directory; in a worktree or a submodule it records none, and the
		// build reports Unknown (make build VERSION= sets one there).
		t.Skip("this checkout's .git is not a directory (a worktree or submodule): Go stamps no version here")
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		before := gitVersion(t, root)
		plugin := build(t, dir, "vault-plugin-aws-hmac")
		helper := build(t, dir, "aws-hmac")
		after := gitVersion(t, root)
		if before != after {
			if attempt == 4 {
				t.Fatalf("the tree kept changing during the build: %s then %s", before, after)
			}
			continue
		}
		for _, c := range [][]string{{plugin, "-version"}, {plugin, "version"}, {helper, "version"}, {helper, "--version"}} {
			if got := strings.TrimSpace(run(t, c...)); got != after {
				t.Errorf("%s %s printed %q, git says %q", filepath.Base(c[0]), c[1], got, after)
			}
		}
		if !Valid(after) || strings.HasPrefix(after, Unknown) {
			t.Errorf("git's version %q is not a stamped semantic version", after)
		}
		return
	}
}

// TestReleaseBuildOverride: -ldflags sets a release's version, and a build
// given one Vault would refuse does not start.
func TestReleaseBuildOverride(t *testing.T) {
	dir := t.TempDir()
	plugin := build(t, dir, "vault-plugin-aws-hmac", "-ldflags=-X "+module+"/internal/version.override=1.7.0")
	if got := strings.TrimSpace(run(t, plugin, "-version")); got != "v1.7.0" {
		t.Fatalf("release build printed %q, want v1.7.0", got)
	}
	bad := build(t, dir, "vault-plugin-aws-hmac", "-ldflags=-X "+module+"/internal/version.override=1.7")
	out, err := exec.Command(bad, "-version").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a semantic version") {
		t.Fatalf("a build with version 1.7 printed %q, %v", out, err)
	}
	out, err = exec.Command(bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a semantic version") {
		t.Fatalf("a build with version 1.7 started: %q, %v", out, err)
	}
}

// build compiles a command as the Makefile does: version control stamping
// on whatever GOFLAGS says.
func build(t *testing.T, dir, name string, flags ...string) string {
	t.Helper()
	out := filepath.Join(dir, name+strconv.Itoa(len(flags)))
	args := append([]string{"build", "-buildvcs=auto", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, module+"/cmd/"+name)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitTry(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func gitTry(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TZ=UTC", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	return string(out), err
}

// gitVersion is the version git gives the working tree, as Go stamps it:
// the tag on HEAD, or a pseudo-version after the latest tag (v0.0.0 when
// none), from the commit time in UTC and 12 digits of the revision; +dirty
// when anything is modified or untracked.
func gitVersion(t *testing.T, root string) string {
	t.Helper()
	rev := strings.TrimSpace(gitOut(t, root, "rev-parse", "HEAD"))
	at := strings.TrimSpace(gitOut(t, root, "log", "-1", "--format=%cd", "--date=format-local:%Y%m%d%H%M%S", rev))
	v := "v0.0.0-" + at + "-" + rev[:12]
	if tag, err := gitTry(root, "describe", "--tags", "--exact-match", "--match", "v[0-9]*", rev); err == nil && Valid(strings.TrimSpace(tag)) {
		v = strings.TrimSpace(tag)
	} else if base, err := gitTry(root, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", rev); err == nil && Valid(strings.TrimSpace(base)) {
		v = afterTag(strings.TrimSpace(base)) + "0." + at + "-" + rev[:12]
	}
	if strings.TrimSpace(gitOut(t, root, "status", "--porcelain")) != "" {
		v += "+dirty"
	}
	return v
}

// afterTag is a pseudo-version's prefix after a tag: the next patch for a
// release (v1.2.3 → v1.2.4-), the tag itself for a pre-release (v1.2.3-rc.1 → v1.2.3-rc.1.).
func afterTag(tag string) string {
	tag, _, _ = strings.Cut(tag, "+")
	if strings.Contains(tag, "-") {
		return tag + "."
	}
	i := strings.LastIndex(tag, ".")
	patch, _ := strconv.Atoi(tag[i+1:])
	return tag[:i+1] + strconv.Itoa(patch+1) + "-"
}
