package awshmac

import (
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// mintingServices hand out credentials or keys: a signature for them is
// authority beyond any Vault role, so only actions listed one by one in
// allowed_actions may be signed for them.
var mintingServices = []string{"sts", "iam", "sso", "sso-oauth", "cognito-identity", "signin", "rolesanywhere"}

// authParams are SigV4's own parameters: the signer sets them, a caller
// never may, in a header or in the query.
var authParams = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
}

var (
	methodListRe = regexp.MustCompile(`^[A-Za-z]{1,16}$`)
	actionRe     = regexp.MustCompile(`^[a-z0-9-]{1,63}:[A-Za-z0-9*]{1,128}$`)
	pathGlobRe   = regexp.MustCompile(`^/[^\x00-\x1f\x7f]*$`) // and at most maxFieldLength, screened
)

func isMinting(service string) bool { return slices.Contains(mintingServices, service) }

// validateSigningScope checks the scope fields below the service.
func (r *roleEntry) validateSigningScope() error {
	if i := firstMismatch(r.AllowedMethods, methodListRe); i > 0 {
		return badInput("allowed_methods: item %d is not an HTTP method", i)
	}
	if i := firstMismatch(r.AllowedPaths, pathGlobRe); i > 0 {
		return badInput("allowed_paths: item %d is not a path glob starting with /", i)
	}
	if i := firstMismatch(r.AllowedActions, actionRe); i > 0 {
		return badInput("allowed_actions: item %d is not service:Action, such as sts:GetCallerIdentity", i)
	}
	for i, a := range r.AllowedActions {
		service, action, _ := strings.Cut(a, ":")
		if isMinting(service) && strings.Contains(action, "*") {
			return badInput("allowed_actions: item %d is a wildcard for %s, which mints credentials: list each action", i+1, service)
		}
	}
	switch {
	case r.MaxPresignExpires < 0 || r.MaxPresignExpires > maxPresignExpiry:
		return badInput("max_presign_expires must be between 1s and 7 days, or 0 for 7 days")
	case !slices.Contains(signWiths, r.SignWith):
		return badInput("sign_with must be key or session")
	}
	return nil
}

// authoriseScope checks a parsed request against the role's scope below
// the service: method, path, action, copy source and presign lifetime.
func (in *signRequest) authoriseScope(role *roleEntry) error {
	if len(role.AllowedMethods) > 0 && !slices.Contains(role.AllowedMethods, in.method) {
		return outOfScope("method: the role may not sign this method (allowed_methods: %s)", listOrNone(role.AllowedMethods))
	}
	if len(role.AllowedPaths) > 0 && !matchGlobs(role.AllowedPaths, in.scopePath) {
		return outOfScope("url: the role may not sign this path (allowed_paths: %s)", listOrNone(role.AllowedPaths))
	}
	if err := in.authoriseAction(role); err != nil {
		return err
	}
	if err := in.authoriseCopySource(role); err != nil {
		return err
	}
	if in.presign && role.MaxPresignExpires > 0 && in.expires > role.MaxPresignExpires {
		return outOfScope("expires: the role's presigned URLs live at most %s (max_presign_expires)", role.MaxPresignExpires)
	}
	return nil
}

// authoriseAction matches the API action against allowed_actions. A
// service that mints credentials needs its action listed exactly.
func (in *signRequest) authoriseAction(role *roleEntry) error {
	minting := isMinting(in.service)
	if len(role.AllowedActions) == 0 && !minting {
		return nil
	}
	if in.actionErr != nil {
		return in.actionErr
	}
	if in.action == "" {
		if !minting && slices.Contains(role.AllowedActions, in.service+":*") {
			return nil // S3 has no action: s3:* lets method and path decide
		}
		return outOfScope("action: the request's API action cannot be determined, and the role limits actions (allowed_actions: %s)", listOrNone(role.AllowedActions))
	}
	if in.bodyHidden && !in.actionFromTarget {
		// A form body only its hash stands for could name another action.
		return outOfScope("payload_hash: the role limits API actions; give the body itself, so its Action is seen")
	}
	want := in.service + ":" + in.action
	for _, a := range role.AllowedActions {
		if strings.EqualFold(a, want) || (!minting && globMatch(strings.ToLower(a), strings.ToLower(want))) {
			return nil
		}
	}
	if minting {
		return outOfScope("action: %s mints credentials; only actions listed in allowed_actions are signed (allowed_actions: %s)", in.service, listOrNone(role.AllowedActions))
	}
	return outOfScope("action: the role may not sign this action (allowed_actions: %s)", listOrNone(role.AllowedActions))
}

// findAction reads the API action: the Query protocol's Action parameter
// (query or form body) or the JSON protocols' X-Amz-Target. Anything
// ambiguous — two of them, a name in another case — is refused.
func (in *signRequest) findAction(body []byte) {
	var found []string
	collect := func(values url.Values) {
		for k, vs := range values {
			if strings.EqualFold(k, "action") {
				if k != "Action" {
					in.actionErr = outOfScope("action: an Action parameter in another case is ambiguous")
				}
				found = append(found, vs...)
			}
		}
	}
	if in.queryErr != nil {
		in.actionErr = badInput("url: the query string is malformed")
		return
	}
	collect(in.query)
	// Whatever its Content-Type says, a body that reads as a form is read:
	// a service might take it as one.
	if body != nil {
		form, err := url.ParseQuery(string(body))
		isForm := strings.HasPrefix(strings.ToLower(in.header.Get("Content-Type")), "application/x-www-form-urlencoded")
		if err != nil && isForm {
			in.actionErr = badInput("body: the form is malformed")
			return
		}
		if err == nil {
			collect(form)
		}
	}
	for _, t := range in.header.Values("X-Amz-Target") {
		found = append(found, t[strings.LastIndexByte(t, '.')+1:])
		in.actionFromTarget = true
	}
	switch {
	case len(found) > 1:
		in.actionErr = outOfScope("action: the request names more than one API action")
	case len(found) == 1 && found[0] == "":
		in.actionErr = outOfScope("action: the request names an empty API action")
	case len(found) == 1:
		in.action = found[0]
	}
}

// authoriseCopySource lets x-amz-copy-source name only what the request
// itself could: the same bucket's host scope and the allowed paths.
func (in *signRequest) authoriseCopySource(role *roleEntry) error {
	src := in.header.Get("X-Amz-Copy-Source")
	if src == "" {
		if in.header.Get("X-Amz-Copy-Source-Range") != "" {
			return outOfScope("headers: x-amz-copy-source-range without x-amz-copy-source")
		}
		return nil
	}
	if len(in.header.Values("X-Amz-Copy-Source")) > 1 {
		return outOfScope("headers: more than one x-amz-copy-source")
	}
	srcPath, err := url.PathUnescape(strings.SplitN(src, "?", 2)[0])
	if err != nil {
		return badInput("headers: x-amz-copy-source is not a valid path")
	}
	srcPath = "/" + strings.TrimPrefix(srcPath, "/")
	if bucket, ok := virtualHostedBucket(in.url.Hostname()); ok {
		srcBucket, key, _ := strings.Cut(strings.TrimPrefix(srcPath, "/"), "/")
		if srcBucket != bucket {
			return outOfScope("headers: x-amz-copy-source names another bucket than the request's")
		}
		srcPath = "/" + key
	}
	if len(role.AllowedPaths) > 0 && !matchGlobs(role.AllowedPaths, srcPath) {
		return outOfScope("headers: x-amz-copy-source is outside the role's paths (allowed_paths: %s)", listOrNone(role.AllowedPaths))
	}
	return nil
}

// virtualHostedBucket is the bucket of a virtual-hosted-style S3 host
// (bucket.s3.region.amazonaws.com), if the host is one.
func virtualHostedBucket(host string) (string, bool) {
	bucket, rest, ok := strings.Cut(host, ".")
	if !ok || !(strings.HasPrefix(rest, "s3.") || strings.HasPrefix(rest, "s3-")) {
		return "", false
	}
	return bucket, true
}

// scopePathOf is the path as the service will see it: percent-decoded,
// and for every service but S3 (whose keys are literal) with dot segments
// and repeated slashes resolved.
func scopePathOf(u *url.URL, s3 bool) (string, error) {
	p, err := url.PathUnescape(u.EscapedPath())
	if err != nil {
		return "", badInput("url: the path is not validly percent-encoded")
	}
	if p == "" {
		p = "/"
	}
	if s3 {
		return p, nil
	}
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && cleaned != "/" {
		cleaned += "/"
	}
	return cleaned, nil
}

func matchGlobs(globs []string, s string) bool {
	return slices.ContainsFunc(globs, func(g string) bool { return globMatch(g, s) })
}

// globMatch matches * (any run, slashes included) and ? (one byte).
func globMatch(glob, s string) bool {
	star, match := -1, 0
	gi, si := 0, 0
	for si < len(s) {
		switch {
		case gi < len(glob) && (glob[gi] == '?' || glob[gi] == s[si]):
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

// reservedName is the header's name as the signer knows it, when the
// caller may not give it; "" otherwise.
func reservedName(header string) string {
	for _, list := range [][]string{reservedHeaders, authParams} {
		if i := slices.IndexFunc(list, func(p string) bool { return strings.EqualFold(p, header) }); i >= 0 {
			return list[i]
		}
	}
	return ""
}

// refuseAuthParams keeps SigV4's parameters out of the URL's query; the
// headers were checked as they were parsed (reservedName).
func (in *signRequest) refuseAuthParams() error {
	for name := range in.query {
		if i := authParamIndex(name); i >= 0 {
			return badInput("url: the query may not carry SigV4's own parameter %s", authParams[i])
		}
	}
	return nil
}

func authParamIndex(name string) int {
	return slices.IndexFunc(authParams, func(p string) bool { return strings.EqualFold(p, name) })
}
