package main

import (
	"fmt"
	"io"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/version"
)

// runVersion prints the version this binary was built as, the same one the
// plugin built from the same tree reports to Vault.
func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stderr, versionHelp)
		return 0
	}
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: aws-hmac version")
		return 2
	}
	v, err := version.Get()
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, v)
	return 0
}

const versionHelp = `Usage: aws-hmac version

Prints the version this binary was built as; it never talks to Vault.

Example:
  aws-hmac version
`
