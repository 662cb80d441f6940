package awshmac

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/scope"
)

// defaultKEKURIs: a Vault transit KEK on this machine (the demo's, or the
// same Vault's), and the development KEK, which needs AWS_HMAC_ALLOW_INSECURE
// besides. A cloud KMS key must be listed: a KEK whoever writes config could
// choose would let them decrypt the keyset.
var defaultKEKURIs = []string{"hcvault://127.0.0.1*", "hcvault://localhost*", "hcvault://[::1]*", "insecure-local-kek://*"}

// Without AWS_HMAC_STS_ENDPOINTS the STS and IAM endpoints may be STS's and
// IAM's own hosts in every AWS partition, and loopback (test peers, local
// proxies) — not every host under amazonaws.com: API Gateway, S3 and load
// balancers there answer for whoever owns them, and a request signed with
// the key, sent to them, could be replayed to AWS within fifteen minutes.
//
// stsHostRe: sts or iam, -fips, an optional region, on AWS's domains:
// sts.amazonaws.com, sts.eu-west-3.amazonaws.com, sts-fips.us-east-1...,
// iam.cn-north-1.amazonaws.com.cn, sts.eu-west-3.api.aws (dual-stack).
var stsHostRe = regexp.MustCompile(`^(sts|iam)(-fips)?(\.[a-z]{2}(-[a-z]+)+-[0-9]+)?\.(amazonaws\.com(\.cn)?|api\.aws|c2s\.ic\.gov|sc2s\.sgov\.gov)$`)

// allowsVaultAddress: a Vault a token may be sent to, matched as
// scheme://host:port with the default port filled in; loopback only unless
// the registration lists addresses.
func (o *operatorEnv) allowsVaultAddress(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if len(o.vaultAddresses) == 0 {
		return scope.IsLoopback(u.Hostname())
	}
	want := canonicalAddress(u)
	return slices.ContainsFunc(o.vaultAddresses, func(a string) bool {
		l, err := url.Parse(a)
		return err == nil && canonicalAddress(l) == want
	})
}

func canonicalAddress(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// allowsKEK matches a KEK URI exactly, or an entry ending in * by prefix.
func (o *operatorEnv) allowsKEK(uri string) bool {
	return slices.ContainsFunc(o.kekURIs, func(a string) bool {
		if prefix, ok := strings.CutSuffix(a, "*"); ok {
			return strings.HasPrefix(uri, prefix)
		}
		return a == uri
	})
}

// allowsSTSEndpoint: an STS or IAM endpoint on a listed host (*.domain for
// subdomains), or on loopback.
func (o *operatorEnv) allowsSTSEndpoint(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if scope.IsLoopback(host) {
		return true
	}
	if o.stsHosts == nil {
		return stsHostRe.MatchString(host)
	}
	return slices.ContainsFunc(o.stsHosts, func(a string) bool {
		a = strings.ToLower(a)
		if suffix, ok := strings.CutPrefix(a, "*"); ok {
			return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
		}
		return a == host
	})
}

// checkEndpoints refuses STS and IAM endpoints the registration does not
// allow; it runs on every write and on every engine build.
func (o *operatorEnv) checkEndpoints(c *commonConfig) error {
	for _, f := range []struct{ name, value string }{{"sts_endpoint", c.STSEndpoint}, {"iam_endpoint", c.IAMEndpoint}} {
		if f.value != "" && !o.allowsSTSEndpoint(f.value) {
			return badInput("%s is not a host the plugin's registration allows (%s; default: STS's and IAM's own AWS hosts, and loopback); %s", f.name, envSTSEndpoints, registrationHint(envSTSEndpoints, "sts.example.internal,iam.example.internal"))
		}
	}
	return nil
}
