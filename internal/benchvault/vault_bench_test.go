// Package benchvault measures the plugin inside a real Vault: requests per
// second of sign/ beside Vault's own paths and beside the plugin as built
// at a baseline commit, mounted in the same Vault and measured alternately
// in the same run, and the p50 latency of creds/ beside the bare STS call.
//
// Run it with make bench-vault. Only ratios from one run mean anything.
package benchvault

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

const (
	pluginPkg   = "github.com/awshmac/vault-plugin-aws-hmac/cmd/vault-plugin-aws-hmac"
	defaultBase = "7347647"
	connections = 8
	roleARN     = "arn:aws:iam::123456789012:role/bench"
)

// bench is one run's world.
type bench struct {
	vault  *testenv.Vault
	minio  *testenv.MinIO
	client *http.Client
}

func BenchmarkVault(b *testing.B) {
	dir := b.TempDir()
	current := buildPlugin(b, "", filepath.Join(dir, "current"))
	baseCommit := envOr("BENCH_VAULT_BASELINE", defaultBase)
	baseline := buildPlugin(b, baseCommit, filepath.Join(dir, "baseline"))
	w := &bench{
		vault: testenv.StartVault(b, testenv.VaultOptions{LogLevel: "info"}), // as in production
		minio: testenv.StartMinIO(b),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 2 * connections, MaxIdleConnsPerHost: 2 * connections,
		}},
	}
	w.setup(b, map[string]string{"aws-hmac": current, "aws-hmac-base": baseline})
	dur := envDuration(b, "BENCH_VAULT_DURATION", 3*time.Second)

	results := []row{
		{"sys/health", w.rate(b, dur, http.MethodGet, "sys/health", nil)},
		{"aws-hmac/roles/:name (read)", w.rate(b, dur, http.MethodGet, "aws-hmac/roles/signer", nil)},
		{"transit/hmac (builtin)", w.rate(b, dur, http.MethodPost, "transit/hmac/bench", map[string]any{"input": base64.StdEncoding.EncodeToString([]byte("20261126"))})},
	}
	signBody := map[string]any{"url": w.minio.Endpoint + "/" + w.minio.Bucket + "/reports/2026/q3.csv", "service": "s3", "region": "us-east-1"}
	var ratios []float64
	var cur, base []float64
	for range 3 { // alternate, so both see the same machine
		c := w.rate(b, dur, http.MethodPost, "aws-hmac/sign/signer", signBody)
		o := w.rate(b, dur, http.MethodPost, "aws-hmac-base/sign/signer", signBody)
		cur, base, ratios = append(cur, c), append(base, o), append(ratios, c/o)
	}
	results = append(results,
		row{"aws-hmac/sign/:role (this tree)", median(cur)},
		row{"aws-hmac/sign/:role (" + baseCommit + ")", median(base)})
	credsP50, baseP50, stsP50, readP50 := w.credsLatency(b)

	var out strings.Builder
	fmt.Fprintf(&out, "\nrequests per second, %d connections, %s each:\n", connections, dur)
	for _, r := range results {
		fmt.Fprintf(&out, "  %-40s %9.0f req/s\n", r.name, r.value)
	}
	fmt.Fprintf(&out, "  sign/ this tree ÷ %s, per round: %s; median %.2f×\n", baseCommit, fmtRatios(ratios), median(ratios))
	fmt.Fprintf(&out, "\np50 latency, one request at a time:\n")
	fmt.Fprintf(&out, "  %-40s %9s\n", "aws-hmac/roles/:name (Vault to plugin)", readP50.Round(time.Microsecond))
	fmt.Fprintf(&out, "  %-40s %9s\n", "bare STS AssumeRole (SDK to MinIO)", stsP50.Round(time.Microsecond))
	fmt.Fprintf(&out, "  %-40s %9s  (+%s)\n", "aws-hmac/creds/:role (this tree)", credsP50.Round(time.Microsecond), (credsP50 - stsP50).Round(time.Microsecond))
	fmt.Fprintf(&out, "  %-40s %9s  (+%s)\n", "aws-hmac/creds/:role ("+baseCommit+")", baseP50.Round(time.Microsecond), (baseP50 - stsP50).Round(time.Microsecond))
	fmt.Print(out.String())
	b.ReportMetric(median(ratios), "sign-speedup")
	b.ReportMetric(float64((credsP50 - stsP50).Microseconds()), "creds-overhead-µs")
	b.ReportMetric(float64((baseP50 - stsP50).Microseconds()), "baseline-creds-overhead-µs")
}

type row struct {
	name  string
	value float64
}

// buildPlugin builds the plugin from this tree, or from commit in a
// temporary git worktree.
func buildPlugin(b *testing.B, commit, out string) string {
	b.Helper()
	src := "."
	if commit != "" {
		top := strings.TrimSpace(run(b, "", "git", "rev-parse", "--show-toplevel"))
		src = filepath.Join(b.TempDir(), "baseline")
		run(b, top, "git", "worktree", "add", "--detach", src, commit)
		b.Cleanup(func() { _ = exec.Command("git", "-C", top, "worktree", "remove", "--force", src).Run() })
	}
	run(b, src, "go", "build", "-o", out, pluginPkg)
	return out
}

func run(b *testing.B, dir, name string, args ...string) string {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// setup mounts each plugin build at its path with the transit store and
// MinIO as STS, and makes the transit key the builtin benchmark uses.
func (w *bench) setup(b *testing.B, mounts map[string]string) {
	b.Helper()
	c := w.vault.Client
	if err := c.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/bench", map[string]any{"type": "hmac", "key_size": 32}); err != nil {
		b.Fatal(err)
	}
	for mount, bin := range mounts {
		name := "vault-plugin-" + mount
		w.vault.RegisterPlugin(b, bin, name)
		if err := c.Sys().Mount(mount, &api.MountInput{Type: name}); err != nil {
			b.Fatal(err)
		}
		w.write(b, mount+"/config", map[string]any{
			"access_key": w.minio.AccessKey, "secret_key": w.minio.SecretKey, "key_store": "transit",
			"transit_address": w.vault.Addr, "transit_token": w.vault.Token, "transit_key_name": mount + "-key",
			"sts_endpoint": w.minio.Endpoint, "region": w.minio.Region, "skip_verification": true,
		})
		w.write(b, mount+"/roles/signer", map[string]any{"credential_type": "session_token",
			"allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "127.0.0.1"})
		w.write(b, mount+"/roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": roleARN})
	}
}

func (w *bench) write(b *testing.B, path string, data map[string]any) {
	b.Helper()
	if _, err := w.vault.Client.Logical().Write(path, data); err != nil {
		b.Fatalf("write %s: %v", path, err)
	}
}

// rate runs the request on every connection for dur and returns the
// successful requests per second; any failure stops the benchmark.
func (w *bench) rate(b *testing.B, dur time.Duration, method, path string, data map[string]any) float64 {
	b.Helper()
	var body []byte
	if data != nil {
		body = mustJSON(b, data)
	}
	var done atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for range connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && failed.Load() == nil {
				if err := w.do(method, path, body); err != nil {
					failed.Store(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

func (w *bench) do(method, path string, body []byte) error {
	req, _ := http.NewRequest(method, w.vault.Addr+"/v1/"+path, bytes.NewReader(body))
	req.Header.Set("X-Vault-Token", w.vault.Token)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, out)
	}
	return nil
}

// credsLatency measures creds/ on both builds and the bare AssumeRole
// they make, in alternating blocks, one request at a time.
func (w *bench) credsLatency(b *testing.B) (current, baseline, bare, read time.Duration) {
	b.Helper()
	client := sts.New(sts.Options{
		Region: w.minio.Region, BaseEndpoint: aws.String(w.minio.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(w.minio.AccessKey, w.minio.SecretKey, ""),
	})
	assume := func() error {
		_, err := client.AssumeRole(context.Background(), &sts.AssumeRoleInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("bench"), DurationSeconds: aws.Int32(3600),
		})
		return err
	}
	samples := make([][]time.Duration, 4)
	calls := []func() error{
		func() error { return w.do(http.MethodGet, "aws-hmac/creds/deploy", nil) },
		func() error { return w.do(http.MethodGet, "aws-hmac-base/creds/deploy", nil) },
		assume,
		func() error { return w.do(http.MethodGet, "aws-hmac/roles/deploy", nil) },
	}
	for range 10 {
		for i, call := range calls {
			for range 20 {
				t := time.Now()
				if err := call(); err != nil {
					b.Fatal(err)
				}
				samples[i] = append(samples[i], time.Since(t))
			}
		}
	}
	return p50(samples[0]), p50(samples[1]), p50(samples[2]), p50(samples[3])
}

func p50(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[len(s)/2]
}

func fmtRatios(r []float64) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = fmt.Sprintf("%.2f×", v)
	}
	return strings.Join(parts, " ")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return d
}
