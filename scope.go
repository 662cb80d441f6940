package awshmac

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/scope"
)

// authParams are SigV4's own parameters: the signer sets them, a caller
// never may, in a header or in the query.
var authParams = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
}

// policy is the role's signing scope as internal/scope reads it.
func (r *roleEntry) policy() *scope.Policy {
	return &scope.Policy{
		Services:          r.AllowedServices,
		Regions:           r.AllowedRegions,
		Hosts:             r.AllowedHosts,
		Methods:           r.AllowedMethods,
		Paths:             r.AllowedPaths,
		Actions:           r.AllowedActions,
		Schemes:           r.AllowedSchemes,
		MaxPresignExpires: r.MaxPresignExpires,
	}
}

// validateSigningScope checks the scope fields below the service.
func (r *roleEntry) validateSigningScope() error {
	if err := r.policy().Validate(); err != nil {
		return scopeErr(err)
	}
	if !slices.Contains(signWiths, r.SignWith) {
		return badInput("sign_with must be key or session")
	}
	return nil
}

// scopeErr maps the scope's refusal to this package's error kinds.
func scopeErr(err error) error {
	var se *scope.Error
	if !errors.As(err, &se) {
		return err
	}
	if se.Status == http.StatusBadRequest {
		return badInput("%s", se.Msg)
	}
	return outOfScope("%s", se.Msg)
}

func matchGlobs(globs []string, s string) bool { return scope.MatchGlobs(globs, s) }

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

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
