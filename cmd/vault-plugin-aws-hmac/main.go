// Command vault-plugin-aws-hmac is the Vault plugin binary.
//
// Vault starts it with the API client TLS flags; run by hand with
// "version" (or -version) it prints the version it reports to Vault, the
// one `vault plugin register -version` must name.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/version"
)

func main() {
	// A copy of this binary started to check a PKCS#11 PIN does only that.
	if pkcs11.ServePINCheck() {
		return
	}
	v, verr := version.Get()
	if len(os.Args) == 2 && isVersionArg(os.Args[1]) {
		if verr != nil {
			fmt.Fprintln(os.Stderr, "vault-plugin-aws-hmac:", verr)
			os.Exit(1)
		}
		fmt.Println(v)
		return
	}
	if verr != nil {
		// Vault would refuse to register or run a plugin reporting it.
		fatal(verr)
	}
	if os.Getenv("GOGC") == "" {
		// The heap is a few MiB of short-lived request data: collecting it
		// less often saves CPU that Vault, on the same cores, can use.
		debug.SetGCPercent(400)
	}
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: awshmac.Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(apiClientMeta.GetTLSConfig()),
	}); err != nil {
		fatal(err)
	}
}

func isVersionArg(a string) bool {
	return a == "version" || a == "-version" || a == "--version"
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
