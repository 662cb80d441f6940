package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

const execHelp = `Usage: aws-hmac exec -role R [-mount aws-hmac] [-keep-vault-env] -- CMD ARGS...

Runs CMD with a container-credentials endpoint for creds/<role> on a random
loopback port, for CMD's life. CMD gets this environment with
AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN
added, and without:
  - the AWS key variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN, AWS_PROFILE and any earlier
    AWS_CONTAINER_* endpoint), so it uses the endpoint, never a key;
  - every VAULT_* variable (VAULT_TOKEN, VAULT_ADDR, VAULT_AGENT_ADDR,
    VAULT_NAMESPACE, VAULT_CACERT, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
    VAULT_ROLE_ID, VAULT_SECRET_ID, ...), unless -keep-vault-env: CMD needs
    AWS access, not this Vault identity. VAULT_ADDR goes too, as it may name
    a Vault Agent whose auto-auth token would answer for CMD.
A file CMD can read as this user (~/.vault-token) stays readable; run CMD as
another user to keep it out. Signals go to CMD; the exit status is CMD's.
Example:

  aws-hmac exec -role deploy -- aws s3 ls

Flags:
`

// keyVariables are removed from the child's environment: it must use the
// endpoint, not a key that happened to be around.
var keyVariables = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"}

func runExec(args []string, stdout, stderr io.Writer) int {
	fs, v := newFlags("exec", execHelp, stderr)
	every := fs.Duration("refresh-every", 0, "fetch new credentials at least this often; default at 80% of their life")
	keepVault := fs.Bool("keep-vault-env", false, "pass this environment's VAULT_* variables (VAULT_TOKEN among them) on to CMD")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	command := fs.Args()
	if len(command) == 0 {
		return fail(stderr, errors.New("exec needs a command after --"))
	}
	s, l, err := startCredServer(v, "127.0.0.1:0", *every)
	if err != nil {
		return fail(stderr, err)
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	env := childEnv(os.Environ())
	if !*keepVault {
		env = withoutVault(env)
	}
	cmd.Env = append(env, s.env(l)...)
	return runChild(cmd, stderr)
}

func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keyVariables, name) {
			out = append(out, kv)
		}
	}
	return out
}

// withoutVault drops every VAULT_* variable: Vault's client variables
// (token, address, agent, TLS client key, namespace) and the AppRole
// convention's VAULT_ROLE_ID and VAULT_SECRET_ID alike.
func withoutVault(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "VAULT_") })
}

// runChild starts cmd, forwards signals to it and returns its status.
func runChild(cmd *exec.Cmd, stderr io.Writer) int {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		return fail(stderr, err)
	}
	go func() {
		for sig := range signals {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exit.ExitCode()
	}
	return fail(stderr, err)
}
