// Command aws-hmac is the application side of vault-plugin-aws-hmac: it
// gives AWS clients credentials or signatures from Vault, and writes no
// credential to disk.
//
//	aws-hmac credential-process -role R   the AWS credential_process JSON
//	aws-hmac serve -role R                 a container-credentials endpoint
//	aws-hmac exec -role R -- CMD ARGS...   CMD with that endpoint
//	aws-hmac proxy -role R                 a local endpoint that has Vault sign every request
//	aws-hmac presign -role R URL...        presigned URLs, many in one call
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// subcommands, by name.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"credential-process": runCredentialProcess,
	"serve":              runServe,
	"exec":               runExec,
	"proxy":              runProxy,
	"presign":            runPresign,
	"tpm":                runTPM,
	"version":            runVersion,
	"-version":           runVersion,
	"--version":          runVersion,
}

const usage = `Usage: aws-hmac <command> [flags]

Commands:
  credential-process  print credentials from creds/<role> as the AWS credential_process JSON
  serve               serve creds/<role> as a container-credentials endpoint (loopback,
                      link-local or TLS; -token-file, -imds, -pod-jwt-mount)
  exec                run a command with that endpoint, and no key in its environment
  proxy               a local endpoint that has Vault sign each request through sign/<role>
  presign             presigned URLs from sign/<role>, many in one call, one per line
  tpm                 TPM duplication: enroll a node, wrap a secret offline, check a node
  version             print the version this binary was built as

Vault is reached as the vault CLI reaches it: -address or VAULT_ADDR,
-namespace or VAULT_NAMESPACE, -ca-cert or VAULT_CACERT; the token from
VAULT_TOKEN or ~/.vault-token, or none when -address is a Vault Agent API
proxy with auto-auth. Run "aws-hmac <command> -help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "aws-hmac: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return cmd(args[1:], stdout, stderr)
}

// newFlags is a subcommand's flag set with the Vault flags and its help.
func newFlags(name, help string, stderr io.Writer) (*flag.FlagSet, *vaultFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	v := &vaultFlags{}
	v.register(fs)
	fs.Usage = func() { _, _ = io.WriteString(stderr, help); fs.PrintDefaults() }
	return fs, v
}

// parseFlags parses a subcommand's flags; help is not an error.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		return false, 2
	}
	return true, 0
}

// fail reports an error on stderr, as SDKs expect of credential_process.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "aws-hmac: %v\n", err)
	return 1
}
