package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/vaultsign"
)

const presignHelp = `Usage: aws-hmac presign -role R [-expires 15m] [-service s3] [-region R] [-method GET] [URL...]

Presigns every URL through Vault's sign/<role>, many in one call (batch_input),
each within the role's scope. With no URL arguments, reads URLs from stdin,
one per line (blank lines skipped). Prints one line per URL, in order: the
presigned URL, or an empty line where Vault refused it; says which failed and
why on stderr, and exits 1 if any did. Example:

  aws-hmac presign -role reports-read -expires 1h \
    https://reports-bucket.s3.eu-west-3.amazonaws.com/2026/q3.csv \
    https://reports-bucket.s3.eu-west-3.amazonaws.com/2026/q4.csv

Flags:
`

// presignFlags are presign's own flags.
type presignFlags struct {
	expires                 time.Duration
	service, region, method string
}

func runPresign(args []string, stdout, stderr io.Writer) int {
	fs, v := newFlags("presign", presignHelp, stderr)
	p := &presignFlags{}
	fs.DurationVar(&p.expires, "expires", 15*time.Minute, "how long each URL works (at most the role's max_presign_expires)")
	fs.StringVar(&p.service, "service", "s3", "signing name of the service")
	fs.StringVar(&p.region, "region", "", "region to sign for; default the engine's")
	fs.StringVar(&p.method, "method", "GET", "HTTP method the URLs will be used with")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	urls, err := presignURLs(fs.Args(), os.Stdin)
	if err != nil {
		return fail(stderr, err)
	}
	c, err := v.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &vaultsign.Client{Vault: c, Mount: v.mount}
	results, err := client.PresignMany(ctx, v.role, urls, vaultsign.Request{
		Method: p.method, Service: p.service, Region: p.region, Expires: p.expires})
	if err != nil {
		return fail(stderr, err)
	}
	return printPresigned(urls, results, stdout, stderr)
}

// presignURLs are the arguments or, without any, stdin's lines.
func presignURLs(args []string, stdin io.Reader) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	var urls []string
	scan := bufio.NewScanner(stdin)
	scan.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for scan.Scan() {
		if line := strings.TrimSpace(scan.Text()); line != "" {
			urls = append(urls, line)
		}
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("reading URLs from stdin: %w", err)
	}
	if len(urls) == 0 {
		return nil, errors.New("no URLs: give them as arguments or on stdin, one per line")
	}
	return urls, nil
}

// printPresigned prints a line per URL, empty where refused, and the
// refusals on stderr; 1 if there were any.
func printPresigned(urls []string, results []vaultsign.Result, stdout, stderr io.Writer) int {
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	code := 0
	for i, r := range results {
		fmt.Fprintln(w, r.URL)
		var ie *vaultsign.ItemError
		if errors.As(r.Err, &ie) {
			fmt.Fprintf(stderr, "aws-hmac: URL %d (%s): Vault refused it: %d %s\n", i+1, urls[i], ie.Status, ie.Reason)
			code = 1
		}
	}
	return code
}
