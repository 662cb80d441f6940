package awshmac

import (
	"net/url"
	"slices"
	"strings"
)

// defaultKEKURIs: a Vault transit KEK on this machine (the demo's, or the
// same Vault's), and the development KEK, which needs AWS_HMAC_ALLOW_INSECURE
// besides. A cloud KMS key must be listed: a KEK whoever writes config could
// choose would let them decrypt the keyset.
var defaultKEKURIs = []string{"hcvault://127.0.0.1*", "hcvault://localhost*", "hcvault://[::1]*", "insecure-local-kek://*"}

// defaultSTSHosts are AWS's own endpoint domains and loopback (test peers,
// local proxies): a request signed with the key, sent anywhere else, could
// be replayed to AWS within its fifteen minutes.
var defaultSTSHosts = []string{"*.amazonaws.com", "*.amazonaws.com.cn", "*.api.aws", "*.c2s.ic.gov", "*.sc2s.sgov.gov"}

// allowsVaultAddress: a Vault a token may be sent to, matched as
// scheme://host:port with the default port filled in; loopback only unless
// the registration lists addresses.
func (o *operatorEnv) allowsVaultAddress(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if len(o.vaultAddresses) == 0 {
		return isLoopback(u.Hostname())
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
	if isLoopback(host) {
		return true
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
			return badInput("%s is not a host the plugin's registration allows (%s; default: AWS's own domains and loopback)", f.name, envSTSEndpoints)
		}
	}
	return nil
}
