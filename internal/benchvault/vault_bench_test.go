// Package benchvault measures the plugin inside a real Vault, side by side
// in one run: sign/ beside Vault's own paths and a role read; presigned
// URLs per second in batches of 1, 10 and 100 beside single calls; sign/
// and the p50 of creds/ beside the plugin as built at a baseline commit
// and beside the bare STS call; and the CPU each process spends per
// request. Loads are measured in interleaved rounds and latencies request
// by request, so the machine's and the peer's drift falls on all alike.
//
// Run it with make bench-vault. Only ratios from one run mean anything.
package benchvault

import (
	"bytes"
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

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

const (
	pluginPkg = "github.com/awshmac/vault-plugin-aws-hmac/cmd/vault-plugin-aws-hmac"
	// defaultBase is the tree before batch_input and this round of sign/
	// work: the previous state users run.
	defaultBase = "23ccd53"
	connections = 8
	rounds      = 3
	roleARN     = "arn:aws:iam::123456789012:role/bench"
	current     = "aws-hmac"
	base        = "aws-hmac-base"
)

// bench is one run's world.
type bench struct {
	vault  *testenv.Vault
	minio  *testenv.MinIO
	client *http.Client
	meters map[string]*cpuMeter // by mount
}

func BenchmarkVault(b *testing.B) {
	dir := b.TempDir()
	baseCommit := envOr("BENCH_VAULT_BASELINE", defaultBase)
	bins := map[string]string{current: buildPlugin(b, "", filepath.Join(dir, "current")),
		base: buildPlugin(b, baseCommit, filepath.Join(dir, "baseline"))}
	w := &bench{
		vault: testenv.StartVault(b, testenv.VaultOptions{LogLevel: "info"}), // as in production
		minio: testenv.StartMinIO(b),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 2 * connections, MaxIdleConnsPerHost: 2 * connections,
		}},
	}
	w.setup(b, bins)
	dur := envDuration(b, "BENCH_VAULT_DURATION", 3*time.Second)
	loads := w.loads(b, baseCommit)
	results := w.measure(b, dur, loads)
	lat := w.credsLatency(b)

	var out strings.Builder
	reportRates(&out, dur, loads, results)
	reportGoals(&out, baseCommit, results)
	reportCPU(&out, loads, results)
	lat.report(&out, baseCommit)
	fmt.Print(out.String())
	b.ReportMetric(median(results["sign"].ratio(results["roles"])), "sign/roles-read")
	b.ReportMetric(100*median(results["batch100"].ratio(results["presign"])), "batch100/single-URLs")
	b.ReportMetric(median(results["sign"].ratio(results["sign-base"])), "sign-speedup")
	b.ReportMetric(float64(lat.paired(0).Microseconds()), "creds-overhead-µs")
	b.ReportMetric(float64(lat.paired(1).Microseconds()), "baseline-creds-overhead-µs")
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
	w.meters = map[string]*cpuMeter{}
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
		// sign_with=key: MinIO's STS has no GetSessionToken for a session to sign with.
		w.write(b, mount+"/roles/signer", map[string]any{"credential_type": "session_token", "sign_with": "key",
			"allowed_services": "s3", "allowed_regions": "*", "allowed_hosts": "127.0.0.1"})
		w.write(b, mount+"/roles/deploy", map[string]any{"credential_type": "assumed_role", "role_arns": roleARN})
		w.meters[mount] = newCPUMeter(w.vault.PluginDir, name)
	}
}

func (w *bench) write(b *testing.B, path string, data map[string]any) {
	b.Helper()
	if _, err := w.vault.Client.Logical().Write(path, data); err != nil {
		b.Fatalf("write %s: %v", path, err)
	}
}

// load is one kind of request: where it goes, and how many presigned
// URLs one request yields (0: not counted in URLs).
type load struct {
	key, name    string
	method, path string
	body         []byte
	urls         int
	mount        string // the plugin whose CPU it costs; "" for none
}

// loads are the requests measured side by side.
func (w *bench) loads(b *testing.B, baseCommit string) []load {
	signBody := mustJSON(b, map[string]any{"url": w.objectURL(0), "service": "s3", "region": "us-east-1"})
	hmacBody := mustJSON(b, map[string]any{"input": base64.StdEncoding.EncodeToString([]byte("20261126"))})
	out := []load{
		{"health", "sys/health", http.MethodGet, "sys/health", nil, 0, ""},
		{"roles", "aws-hmac/roles/:name (read)", http.MethodGet, current + "/roles/signer", nil, 0, current},
		{"transit", "transit/hmac (builtin)", http.MethodPost, "transit/hmac/bench", hmacBody, 0, ""},
		{"sign", "aws-hmac/sign/:role (this tree)", http.MethodPost, current + "/sign/signer", signBody, 0, current},
		{"sign-base", "aws-hmac/sign/:role (" + baseCommit + ")", http.MethodPost, base + "/sign/signer", signBody, 0, base},
		{"presign", "sign/ presigned, single calls", http.MethodPost, current + "/sign/signer", w.presignBody(b, 0), 1, current},
	}
	for _, n := range []int{1, 10, 100} {
		out = append(out, load{fmt.Sprintf("batch%d", n), fmt.Sprintf("sign/ batch_input × %d", n), http.MethodPost,
			current + "/sign/signer", w.batchBody(b, n), n, current})
	}
	return out
}

func (w *bench) objectURL(i int) string {
	return fmt.Sprintf("%s/%s/reports/2026/part-%03d.csv", w.minio.Endpoint, w.minio.Bucket, i)
}

func (w *bench) presignBody(b *testing.B, i int) []byte {
	return mustJSON(b, map[string]any{"url": w.objectURL(i), "service": "s3", "presign": true, "expires": 900})
}

// batchBody is n presigned GETs in one call; every item is checked to be
// signed once, so a refused item cannot pass for a fast one.
func (w *bench) batchBody(b *testing.B, n int) []byte {
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"url": w.objectURL(i), "service": "s3", "presign": true, "expires": 900}
	}
	s, err := w.vault.Client.Logical().Write(current+"/sign/signer", map[string]any{"batch_input": items})
	if err != nil {
		b.Fatal(err)
	}
	results, _ := s.Data["batch_results"].([]any)
	for i, r := range results {
		if m, _ := r.(map[string]any); fmt.Sprint(m["status"]) != "200" {
			b.Fatalf("batch of %d, item %d: %v", n, i, r)
		}
	}
	if len(results) != n {
		b.Fatalf("batch of %d: %d results", n, len(results))
	}
	return mustJSON(b, map[string]any{"batch_input": items})
}

// measured is one load over the rounds.
type measured struct {
	rates []float64 // requests per second, one per round
	cpu   cpuSample // over all rounds
	done  int64     // requests over all rounds
}

func (m *measured) ratio(o *measured) []float64 {
	r := make([]float64, len(m.rates))
	for i := range r {
		r[i] = m.rates[i] / o.rates[i]
	}
	return r
}

// measure runs every load for dur in each round, the order turning by one
// each round, with each process's CPU time read around it.
func (w *bench) measure(b *testing.B, dur time.Duration, loads []load) map[string]*measured {
	out := map[string]*measured{}
	for _, l := range loads {
		out[l.key] = &measured{}
	}
	for r := range rounds {
		for i := range loads {
			l := loads[(i+r)%len(loads)]
			m := w.meters[l.mount]
			if m == nil {
				m = w.meters[current]
			}
			before := m.sample()
			rate, done := w.rate(b, dur, l.method, l.path, l.body)
			got := out[l.key]
			got.cpu = got.cpu.add(m.sample().sub(before))
			got.rates, got.done = append(got.rates, rate), got.done+done
		}
	}
	return out
}

// rate runs the request on every connection for dur and returns the
// successful requests per second and their number; any failure stops
// the benchmark.
func (w *bench) rate(b *testing.B, dur time.Duration, method, path string, body []byte) (float64, int64) {
	b.Helper()
	var done atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for range connections {
		wg.Go(func() {
			for time.Now().Before(deadline) && failed.Load() == nil {
				if err := w.do(method, path, body); err != nil {
					failed.Store(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	return float64(done.Load()) / time.Since(start).Seconds(), done.Load()
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
