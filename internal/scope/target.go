package scope

import (
	"net"
	"slices"
	"strings"
	"time"
)

// maxPresignExpiry is SigV4's own limit on a presigned URL.
const maxPresignExpiry = 7 * 24 * time.Hour

// checkTarget checks what the request is sent to: service, region, scheme,
// host and method.
func (p *Policy) checkTarget(r *Request) error {
	host := strings.ToLower(r.URL.Host)
	switch {
	case !matchScope(p.Services, r.Service):
		return denied("service: the role may not sign for this service (allowed_services: " + listOrNone(p.Services) + ")")
	case !matchScope(p.Regions, r.Region):
		return denied("region: the role may not sign for this region (allowed_regions: " + listOrNone(p.Regions) + ")")
	case !p.schemeAllowed(r.URL.Scheme, r.URL.Hostname()):
		return denied("url: the role signs only " + strings.Join(p.schemes(), " and ") + " URLs, and http only to loopback hosts (allowed_schemes): a signed http request crosses networks in clear")
	case !matchScope(p.Hosts, host) && !matchScope(p.Hosts, strings.ToLower(r.URL.Hostname())):
		return denied("url: the role may not sign for this host (allowed_hosts: " + listOrNone(p.Hosts) + ")")
	case len(p.Methods) > 0 && !slices.Contains(p.Methods, r.Method):
		return denied("method: the role may not sign this method (allowed_methods: " + listOrNone(p.Methods) + ")")
	}
	return nil
}

func (p *Policy) schemes() []string {
	if len(p.Schemes) == 0 {
		return []string{"https"}
	}
	return p.Schemes
}

// schemeAllowed: https by default; http where the role allows it, and to
// loopback hosts, which no network carries.
func (p *Policy) schemeAllowed(scheme, hostname string) bool {
	return slices.Contains(p.schemes(), scheme) || (scheme == "http" && IsLoopback(hostname))
}

// IsLoopback reports whether a host name is this machine: localhost or a
// loopback address.
func IsLoopback(hostname string) bool {
	if strings.EqualFold(hostname, "localhost") {
		return true
	}
	ip := net.ParseIP(hostname)
	return ip != nil && ip.IsLoopback()
}

func (p *Policy) checkPresign(r *Request) error {
	if r.Presign && p.MaxPresignExpires > 0 && r.Expires > p.MaxPresignExpires {
		return denied("expires: the role's presigned URLs live at most " + p.MaxPresignExpires.String() + " (max_presign_expires)")
	}
	return nil
}

// matchScope reports whether value is allowed by a list: exact (any case),
// "*", or for hosts "*.domain" matching any subdomain.
func matchScope(allowed []string, value string) bool {
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, value) {
			return true
		}
		if suffix, ok := strings.CutPrefix(a, "*"); ok && strings.HasPrefix(suffix, ".") && len(value) > len(suffix) &&
			strings.HasSuffix(strings.ToLower(value), strings.ToLower(suffix)) {
			return true
		}
	}
	return false
}

// namedExactly reports whether the list names value itself, not through a
// wildcard.
func namedExactly(list []string, value string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, value) })
}

// MatchGlobs reports whether any of the globs matches s (GlobMatch).
func MatchGlobs(globs []string, s string) bool {
	return slices.ContainsFunc(globs, func(g string) bool { return GlobMatch(g, s) })
}

// GlobMatch matches * (any run, slashes included) and ? (one byte).
func GlobMatch(glob, s string) bool { return globMatch(glob, s, false) }

// globMatchFold is GlobMatch with ASCII letters matched in any case.
func globMatchFold(glob, s string) bool { return globMatch(glob, s, true) }

func globMatch(glob, s string, fold bool) bool {
	same := func(a, b byte) bool { return a == b || fold && lowerASCII(a) == lowerASCII(b) }
	star, match := -1, 0
	gi, si := 0, 0
	for si < len(s) {
		switch {
		case gi < len(glob) && (glob[gi] == '?' || same(glob[gi], s[si])):
			gi++
			si++
		case gi < len(glob) && glob[gi] == '*':
			star, match = gi, si
			gi++
		case star >= 0:
			gi, match = star+1, match+1
			si = match
		default:
			return false
		}
	}
	for gi < len(glob) && glob[gi] == '*' {
		gi++
	}
	return gi == len(glob)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// checkHeaders: whenever a body is signed, so is its Content-Type, or
// whoever sends the request could add one that makes the service read the
// body another way (a form, JSON, an object's type).
func (p *Policy) checkHeaders(r *Request) error {
	signed := len(r.Body) > 0 || (r.Body == nil && hasPayload(r.PayloadHash) && isHexHash(r.PayloadHash))
	if signed && r.Header.Get("Content-Type") == "" {
		return bad("headers: Content-Type is required with a body, so that it is signed with it")
	}
	return nil
}

func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}
