package main

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

const credentialProcessHelp = `Usage: aws-hmac credential-process -role R [-mount aws-hmac] [-ttl D]

Prints credentials from Vault's creds/<role> as the JSON an AWS SDK or the AWS
CLI reads from a credential_process, and nothing else; errors go to stderr with
a non-zero exit. Example, in ~/.aws/config:

  [profile deploy]
  credential_process = aws-hmac credential-process -role deploy

Flags:
`

func runCredentialProcess(args []string, stdout, stderr io.Writer) int {
	fs, v := newFlags("credential-process", credentialProcessHelp, stderr)
	ttl := fs.Duration("ttl", 0, "credential lifetime to ask for; default the role's")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	c, err := v.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cr, err := readCreds(ctx, c, v, *ttl)
	if err != nil {
		return fail(stderr, err)
	}
	out := map[string]any{
		"Version":         1,
		"AccessKeyId":     cr.AccessKeyID,
		"SecretAccessKey": cr.SecretAccessKey,
		"SessionToken":    cr.SessionToken,
		"Expiration":      cr.Expiration.UTC().Format(time.RFC3339),
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return fail(stderr, err)
	}
	return 0
}
