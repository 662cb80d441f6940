package awshmac

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/scope"
)

// The registration environment's variables: set with
// `vault plugin register -env NAME=VALUE`, so only Vault's operator — not
// whoever may write config — decides what the plugin may load or reach.
const (
	envPKCS11Modules = "AWS_HMAC_PKCS11_MODULES" // colon-separated library paths
	envTPMAddresses  = "AWS_HMAC_TPM_ADDRESSES"  // comma-separated host:port of TPM simulators
	envTPMEKCA       = "AWS_HMAC_TPM_EK_CA"      // PEM file: the CAs a duplication target's EK certificate must chain to
	envTPMAllowSRK   = "AWS_HMAC_TPM_ALLOW_SRK"  // comma-separated parent Names (hex) of duplication targets allowed without an EK certificate
	// envTPMDevice is this node's TPM in tpm_mode=duplicate, overriding
	// tpm_device: set in a Vault server's own environment (which its
	// plugins inherit), not in the cluster-wide registration.
	envTPMDevice     = "AWS_HMAC_TPM_DEVICE"
	envAllowInsecure = "AWS_HMAC_ALLOW_INSECURE" // 1: development-only settings are allowed, with warnings
	// Where a stored credential may be sent: the Vault addresses a token
	// goes to, the KEKs a keyset is sealed with, the STS and IAM hosts that
	// receive requests signed with the key.
	envTransitAddresses = "AWS_HMAC_TRANSIT_ADDRESSES" // comma-separated scheme://host:port
	envKEKURIs          = "AWS_HMAC_KEK_URIS"          // comma-separated; a trailing * matches any rest
	envSTSEndpoints     = "AWS_HMAC_STS_ENDPOINTS"     // comma-separated hosts, *.domain allowed
	// envTestMinRotation lowers rotation_period's minimum, for tests only.
	envTestMinRotation = "AWS_HMAC_TEST_MIN_ROTATION_PERIOD"
)

const defaultMinRotationPeriod = time.Hour

// defaultPKCS11Modules are SoftHSM2's paths on Debian, Ubuntu and RHEL.
var defaultPKCS11Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib64/softhsm/libsofthsm2.so",
}

var tpmDeviceRe = regexp.MustCompile(`^/dev/tpm(rm)?[0-9]{1,3}$`)

// operatorEnv is what the registration environment allows.
type operatorEnv struct {
	pkcs11Modules     []string
	tpmAddresses      []string
	vaultAddresses    []string // empty: loopback only
	kekURIs           []string
	stsHosts          []string
	allowInsecure     bool
	minRotationPeriod time.Duration
	tpmEK             tpmEKPolicy
	tpmDevice         string
}

func loadOperatorEnv(getenv func(string) string) operatorEnv {
	env := operatorEnv{pkcs11Modules: defaultPKCS11Modules, allowInsecure: getenv(envAllowInsecure) == "1"}
	if v := getenv(envPKCS11Modules); v != "" {
		env.pkcs11Modules = splitList(v, ":")
	}
	env.tpmAddresses = splitList(getenv(envTPMAddresses), ",")
	env.vaultAddresses = splitList(getenv(envTransitAddresses), ",")
	env.kekURIs = defaultKEKURIs
	if v := getenv(envKEKURIs); v != "" {
		env.kekURIs = splitList(v, ",")
	}
	if v := getenv(envSTSEndpoints); v != "" { // unset: STS's and IAM's own hosts (stsHostRe)
		env.stsHosts = splitList(v, ",")
	}
	env.tpmEK = loadTPMEKPolicy(getenv(envTPMEKCA), getenv(envTPMAllowSRK))
	env.tpmDevice = strings.TrimSpace(getenv(envTPMDevice))
	env.minRotationPeriod = defaultMinRotationPeriod
	if d, err := time.ParseDuration(getenv(envTestMinRotation)); err == nil && d > 0 {
		env.minRotationPeriod = d
	}
	return env
}

func splitList(v, sep string) []string {
	var out []string
	for _, s := range strings.Split(v, sep) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// allowsModule matches the path exactly: no cleaning, so no ../ trick.
func (o *operatorEnv) allowsModule(path string) bool {
	return slices.Contains(o.pkcs11Modules, path)
}

// allowsTPM admits kernel TPM devices and the listed simulator addresses.
func (o *operatorEnv) allowsTPM(device string) bool {
	if addr, ok := strings.CutPrefix(device, "tcp://"); ok {
		return slices.Contains(o.tpmAddresses, addr)
	}
	return tpmDeviceRe.MatchString(device)
}

// check refuses what only development may use, unless the environment
// allows it; then it returns a warning for each such use.
func (o *operatorEnv) check(cfg *pluginConfig) ([]string, error) {
	if err := o.checkEndpoints(&cfg.commonConfig); err != nil {
		return nil, err
	}
	uses := plainHTTPUses(cfg.endpoints())
	uses = append(uses, cfg.store.insecureUses()...)
	if len(uses) == 0 {
		return nil, nil
	}
	slices.Sort(uses)
	if !o.allowInsecure {
		return nil, badInput("%s; refused unless the plugin is registered with %s=1 (development only)", uses[0], envAllowInsecure)
	}
	warnings := make([]string, len(uses))
	for i, u := range uses {
		warnings[i] = "insecure, allowed by " + envAllowInsecure + ": " + u
	}
	return warnings, nil
}

// plainHTTPUses names the endpoint fields that send signed requests,
// credentials or tokens in clear to a host other than this one.
func plainHTTPUses(endpoints map[string]string) []string {
	var uses []string
	for field, raw := range endpoints {
		u, err := url.Parse(raw)
		if err == nil && u.Scheme == "http" && !scope.IsLoopback(u.Hostname()) {
			uses = append(uses, field+" is plain http to a host other than loopback")
		}
	}
	return uses
}
