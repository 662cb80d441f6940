package scope

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/awsmodel"
)

var (
	methodRe   = regexp.MustCompile(`^[A-Z]{1,16}$`)
	actionRe   = regexp.MustCompile(`^[a-z0-9-]{1,63}:[A-Za-z0-9*:-]{1,128}$`)
	pathGlobRe = regexp.MustCompile(`^/[^\x00-\x1f\x7f]*$`)
)

// Validate checks the policy's own fields; the error names the field.
func (p *Policy) Validate() error {
	if i := firstMismatch(p.Methods, methodRe); i > 0 {
		return badf("allowed_methods: item %d is not an HTTP method", i)
	}
	if i := firstMismatch(p.Paths, pathGlobRe); i > 0 {
		return badf("allowed_paths: item %d is not a path glob starting with /", i)
	}
	for i, s := range p.Schemes {
		if s != "https" && s != "http" {
			return badf("allowed_schemes: item %d is not https or http", i+1)
		}
	}
	if p.MaxPresignExpires < 0 || p.MaxPresignExpires > maxPresignExpiry {
		return badf("max_presign_expires must be between 1s and 7 days, or 0 for 7 days")
	}
	for i, a := range p.Actions {
		if err := validateAction(i+1, a); err != nil {
			return err
		}
	}
	return nil
}

// validateAction refuses what could never match, or would match too much:
// a name no operation of a modelled service has (a typo, or an IAM action
// name where the operation's differs), and a wildcard over a service whose
// every action mints credentials or changes access.
func validateAction(i int, a string) error {
	if !actionRe.MatchString(a) {
		return badf("allowed_actions: item %d is not service:Operation, such as sts:GetCallerIdentity", i)
	}
	service, op, _ := strings.Cut(a, ":")
	if strings.Contains(op, "*") {
		if isAuthorityService(service) {
			return badf("allowed_actions: item %d is a wildcard for %s, which mints credentials: list each action", i, service)
		}
		return nil
	}
	if known(service, op) {
		return nil
	}
	return badf("allowed_actions: item %d names no operation of %s in AWS's service models; operations are named as the SDKs and CloudTrail name them (lambda:Invoke, not lambda:InvokeFunction)", i, service)
}

// known reports whether op is an operation of the service, or the service
// is one the models do not describe.
func known(service, op string) bool {
	models := awsmodel.Services(service)
	if service == "s3express" {
		models = awsmodel.Services("s3")
	}
	if slices.ContainsFunc(tokenOps[service], func(t string) bool { _, n := cutLast(t, ":"); return strings.EqualFold(n, op) }) {
		return true
	}
	if len(models) == 0 || service == "execute-api" || service == "neptune-db" && strings.EqualFold(op, "connect") {
		return true
	}
	return slices.ContainsFunc(models, func(s *awsmodel.Service) bool { return s.OperationFold(op) != nil })
}

func firstMismatch(items []string, re *regexp.Regexp) int {
	for i, s := range items {
		if !re.MatchString(s) {
			return i + 1
		}
	}
	return 0
}

func badf(format string, args ...any) error { return bad(fmt.Sprintf(format, args...)) }
