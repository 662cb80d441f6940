package ststest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Inline role policies: validated as IAM's grammar requires, held as
// written, and their Deny statements evaluated for requests signed with a
// session of the role. The server models no Allow: what no Deny matches is
// allowed, so a test sees exactly what the Deny statements take away.

// maxInlineRoleChars is IAM's quota on a role's inline policies together,
// whitespace not counted.
const maxInlineRoleChars = 10240

var (
	policyNameRe  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	actionRe      = regexp.MustCompile(`^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$`)
	conditionKeys = regexp.MustCompile(`^(aws:userid|aws:TokenIssueTime|aws:PrincipalTag/[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128})$`)
)

// The condition operators the server evaluates; any other is refused, so
// a document is never accepted with a condition it would ignore.
var conditionOps = map[string]func(have string, want []string) bool{
	"StringEquals":    func(h string, w []string) bool { return anyOf(w, func(v string) bool { return h == v }) },
	"StringNotEquals": func(h string, w []string) bool { return !anyOf(w, func(v string) bool { return h == v }) },
	"StringLike":      func(h string, w []string) bool { return anyOf(w, func(v string) bool { return globMatch(v, h) }) },
	"DateLessThan":    func(h string, w []string) bool { return anyOf(w, func(v string) bool { return dateCmp(h, v) < 0 }) },
	"DateGreaterThan": func(h string, w []string) bool { return anyOf(w, func(v string) bool { return dateCmp(h, v) > 0 }) },
}

// statement is one parsed statement; lists hold every form IAM accepts.
type statement struct {
	Effect    string
	Actions   []string
	NotAction bool
	Condition map[string]map[string][]string
}

func malformed(format string, args ...any) *apiError {
	return &apiError{400, "MalformedPolicyDocument", fmt.Sprintf(format, args...)}
}

// parsePolicy validates a document strictly and returns its statements.
func parsePolicy(doc string) ([]statement, *apiError) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	for k := range top {
		if k != "Version" && k != "Id" && k != "Statement" {
			return nil, malformed("Policy document contains an unknown field: %s", k)
		}
	}
	var version string
	if json.Unmarshal(top["Version"], &version) != nil || version != "2012-10-17" {
		return nil, malformed("The policy must have Version 2012-10-17.")
	}
	raw := top["Statement"]
	var list []json.RawMessage
	if len(raw) > 0 && raw[0] == '{' {
		list = []json.RawMessage{raw}
	} else if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil, malformed("Policy document must contain a Statement list.")
	}
	var out []statement
	for _, r := range list {
		st, err := parseStatement(r)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func parseStatement(raw json.RawMessage) (statement, *apiError) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return statement{}, malformed("A Statement is not an object.")
	}
	allowed := map[string]bool{"Sid": true, "Effect": true, "Action": true, "NotAction": true, "Resource": true, "NotResource": true, "Condition": true}
	for k := range m {
		if !allowed[k] {
			return statement{}, malformed("Statement contains an unsupported field: %s", k)
		}
	}
	var st statement
	if json.Unmarshal(m["Effect"], &st.Effect) != nil || (st.Effect != "Allow" && st.Effect != "Deny") {
		return st, malformed("Statement Effect must be Allow or Deny.")
	}
	_, hasAction := m["Action"]
	if _, hasNot := m["NotAction"]; hasAction == hasNot {
		return st, malformed("Statement must have exactly one of Action and NotAction.")
	}
	key := "Action"
	if !hasAction {
		key, st.NotAction = "NotAction", true
	}
	var err *apiError
	if st.Actions, err = stringList(m[key], key); err != nil {
		return st, err
	}
	for _, a := range st.Actions {
		if !actionRe.MatchString(a) {
			return st, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
		}
	}
	if err := checkResource(m); err != nil {
		return st, err
	}
	st.Condition, err = parseCondition(m["Condition"])
	return st, err
}

func checkResource(m map[string]json.RawMessage) *apiError {
	_, has := m["Resource"]
	if _, hasNot := m["NotResource"]; has == hasNot {
		return malformed("Statement must have exactly one of Resource and NotResource.")
	}
	key := "Resource"
	if !has {
		key = "NotResource"
	}
	res, err := stringList(m[key], key)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return malformed("Resource %s must be in ARN format or \"*\".", r)
		}
	}
	return nil
}

// stringList reads a string or a non-empty list of strings.
func stringList(raw json.RawMessage, field string) ([]string, *apiError) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 {
		return nil, malformed("%s must be a string or a list of strings.", field)
	}
	return many, nil
}

func parseCondition(raw json.RawMessage) (map[string]map[string][]string, *apiError) {
	if raw == nil {
		return nil, nil
	}
	var ops map[string]map[string]json.RawMessage
	if json.Unmarshal(raw, &ops) != nil {
		return nil, malformed("Condition must be an object of operators.")
	}
	out := map[string]map[string][]string{}
	for op, keys := range ops {
		if conditionOps[op] == nil {
			return nil, malformed("Condition operator %s is not supported.", op)
		}
		out[op] = map[string][]string{}
		for k, v := range keys {
			if !conditionKeys.MatchString(k) {
				return nil, malformed("Condition key %s is not supported.", k)
			}
			vals, err := stringList(v, "Condition")
			if err != nil {
				return nil, err
			}
			for _, val := range vals {
				if strings.HasPrefix(op, "Date") && parseDate(val).IsZero() {
					return nil, malformed("Condition %s needs a date: %s", op, val)
				}
			}
			out[op][k] = vals
		}
	}
	return out, nil
}

// policyChars counts a document as IAM's quota does: without whitespace.
func policyChars(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// deniedLocked reports whether a Deny in the inline policies of the
// session's role matches the action; IAM evaluates no policy for
// GetCallerIdentity.
func (s *Server) deniedLocked(key *accessKey, action string) bool {
	if key.kind != kindRole || action == "sts:GetCallerIdentity" {
		return false
	}
	ctx := map[string]string{
		"aws:userid":         key.userID,
		"aws:tokenissuetime": key.created.UTC().Format(time.RFC3339),
	}
	for k, v := range key.tags {
		ctx["aws:principaltag/"+k] = v
	}
	for _, doc := range s.inline[key.roleARN] {
		sts, _ := parsePolicy(doc)
		for _, st := range sts {
			if st.Effect == "Deny" && st.matchesAction(action) && st.conditionsHold(ctx) {
				return true
			}
		}
	}
	return false
}

func (st statement) matchesAction(action string) bool {
	hit := anyOf(st.Actions, func(p string) bool { return globMatch(strings.ToLower(p), strings.ToLower(action)) })
	return hit != st.NotAction
}

// conditionsHold: every operator and key must match; a key the request
// does not carry fails the condition, as in IAM.
func (st statement) conditionsHold(ctx map[string]string) bool {
	for op, keys := range st.Condition {
		for k, want := range keys {
			have, ok := ctx[strings.ToLower(k)]
			if !ok || !conditionOps[op](have, want) {
				return false
			}
		}
	}
	return true
}

func anyOf(list []string, f func(string) bool) bool {
	for _, v := range list {
		if f(v) {
			return true
		}
	}
	return false
}

// globMatch matches * (any run) and ? (one character).
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}

func parseDate(v string) time.Time {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

func dateCmp(a, b string) int {
	return parseDate(a).Compare(parseDate(b))
}
