package benchvault

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// latencyTurns is how many times each call is timed.
const latencyTurns = 200

// latencies are one-at-a-time timings of each call, taken in turns.
type latencies struct {
	samples [][]time.Duration // by call, one per turn: creds/ here, creds/ on the baseline, bare STS, a role read
}

// credsLatency times creds/ on both builds, the bare AssumeRole they make
// and a role read, one request at a time in turns, each turn starting
// with the next call: MinIO's and the machine's drift falls on all alike,
// and each creds/ is paired with the bare call of its own turn.
func (w *bench) credsLatency(b *testing.B) *latencies {
	b.Helper()
	client := sts.New(sts.Options{
		Region: w.minio.Region, BaseEndpoint: aws.String(w.minio.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(w.minio.AccessKey, w.minio.SecretKey, ""),
	})
	calls := []func() error{
		func() error { return w.do(http.MethodGet, current+"/creds/deploy", nil) },
		func() error { return w.do(http.MethodGet, base+"/creds/deploy", nil) },
		func() error {
			_, err := client.AssumeRole(context.Background(), &sts.AssumeRoleInput{
				RoleArn: aws.String(roleARN), RoleSessionName: aws.String("bench"), DurationSeconds: aws.Int32(3600)})
			return err
		},
		func() error { return w.do(http.MethodGet, current+"/roles/deploy", nil) },
	}
	l := &latencies{samples: make([][]time.Duration, len(calls))}
	for turn := -10; turn < latencyTurns; turn++ { // ten turns to warm up
		for i := range calls {
			k := (i + max(turn, 0)) % len(calls)
			start := time.Now()
			if err := calls[k](); err != nil {
				b.Fatal(err)
			}
			if turn >= 0 {
				l.samples[k] = append(l.samples[k], time.Since(start))
			}
		}
	}
	return l
}

func (l *latencies) p50(i int) time.Duration {
	s := slices.Clone(l.samples[i])
	slices.Sort(s)
	return s[len(s)/2]
}

// paired is the median, over turns, of creds/ on build i less the bare
// STS call of the same turn.
func (l *latencies) paired(i int) time.Duration {
	d := make([]time.Duration, len(l.samples[i]))
	for t := range d {
		d[t] = l.samples[i][t] - l.samples[2][t]
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func (l *latencies) report(out *strings.Builder, baseCommit string) {
	round := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	fmt.Fprintf(out, "\np50 latency, one request at a time, %d turns interleaved:\n", latencyTurns)
	fmt.Fprintf(out, "  %-44s %9s\n", "aws-hmac/roles/:name (Vault to plugin)", round(l.p50(3)))
	fmt.Fprintf(out, "  %-44s %9s\n", "bare STS AssumeRole (SDK to MinIO)", round(l.p50(2)))
	for i, name := range []string{"this tree", baseCommit} {
		fmt.Fprintf(out, "  %-44s %9s  (+%s over the bare call, median of pairs)\n",
			"aws-hmac/creds/:role ("+name+")", round(l.p50(i)), round(l.paired(i)))
	}
	r := float64(l.p50(0)) / float64(l.p50(1))
	fmt.Fprintf(out, "  creds/ this tree ÷ %s, p50: %.2f× (goal: no slower, within 2%%: %s)\n", baseCommit, r, met(r <= 1.02))
}

func reportRates(out *strings.Builder, dur time.Duration, loads []load, results map[string]*measured) {
	fmt.Fprintf(out, "\nrequests per second, %d connections, %s a load, %d rounds interleaved (median):\n", connections, dur, rounds)
	for _, l := range loads {
		if l.urls == 0 {
			fmt.Fprintf(out, "  %-44s %9.0f req/s\n", l.name, median(results[l.key].rates))
		}
	}
	fmt.Fprintf(out, "\npresigned URLs per second (median of rounds):\n")
	single := results["presign"]
	for _, l := range loads {
		if l.urls > 0 {
			m := results[l.key]
			urls := make([]float64, len(m.rates))
			for i, r := range m.rates {
				urls[i] = r * float64(l.urls)
			}
			fmt.Fprintf(out, "  %-44s %9.0f URLs/s  %6.2f× single calls\n", l.name, median(urls), median(urls)/median(single.rates))
		}
	}
}

func reportGoals(out *strings.Builder, baseCommit string, results map[string]*measured) {
	signRoles := results["sign"].ratio(results["roles"])
	batch := results["batch100"].ratio(results["presign"])
	for i := range batch {
		batch[i] *= 100
	}
	fmt.Fprintf(out, "\ngoals, per round and median:\n")
	fmt.Fprintf(out, "  sign/ ÷ roles/ read: %s; %.2f× (goal ≥ 0.9×: %s)\n", fmtRatios(signRoles), median(signRoles), met(median(signRoles) >= 0.9))
	fmt.Fprintf(out, "  URLs/s, batch_input × 100 ÷ single calls: %s; %.1f× (goal ≥ 10×: %s)\n", fmtRatios(batch), median(batch), met(median(batch) >= 10))
	speed := results["sign"].ratio(results["sign-base"])
	fmt.Fprintf(out, "  sign/ this tree ÷ %s: %s; %.2f×\n", baseCommit, fmtRatios(speed), median(speed))
}

func reportCPU(out *strings.Builder, loads []load, results map[string]*measured) {
	fmt.Fprintf(out, "\nCPU per request, µs: Vault / the plugin / the load generator (all rounds):\n")
	for _, l := range loads {
		if m := results[l.key]; l.mount != "" {
			line := fmt.Sprintf("  %-44s %s", l.name, m.cpu.perRequest(m.done))
			if l.urls > 1 {
				line += fmt.Sprintf("   per URL: %s", m.cpu.perRequest(m.done*int64(l.urls)))
			}
			fmt.Fprintln(out, line)
		}
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
