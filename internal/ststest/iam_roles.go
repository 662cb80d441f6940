package ststest

import (
	"encoding/xml"
	"net/url"
	"sort"
	"strings"
	"time"
)

// IAM's role calls: GetRole (with the permissions boundary) and the
// inline role policies, PutRolePolicy, GetRolePolicy, DeleteRolePolicy and
// ListRolePolicies.

type roleXML struct {
	Path                string
	RoleName            string
	RoleID              string `xml:"RoleId"`
	Arn                 string
	CreateDate          string
	MaxSessionDuration  int
	PermissionsBoundary *struct {
		PermissionsBoundaryType string
		PermissionsBoundaryArn  string
	} `xml:",omitempty"`
}

// roleByNameLocked finds a role by its name, as IAM's calls name it.
func (s *Server) roleByNameLocked(params url.Values) (Role, *apiError) {
	name := params.Get("RoleName")
	if err := checkLength("roleName", name, 1, 64); err != nil {
		return Role{}, err
	}
	if err := checkPattern("roleName", name, sessionNameRe); err != nil {
		return Role{}, err
	}
	for arn, r := range s.roles {
		if arn[strings.LastIndex(arn, "/")+1:] == name {
			return r, nil
		}
	}
	return Role{}, &apiError{404, "NoSuchEntity", "The role with name " + name + " cannot be found."}
}

func (s *Server) getRole(params url.Values) (any, *apiError) {
	r, err := s.roleByNameLocked(params)
	if err != nil {
		return nil, err
	}
	name := r.ARN[strings.LastIndex(r.ARN, "/")+1:]
	path := strings.TrimSuffix(strings.SplitN(r.ARN, ":role", 2)[1], name)
	out := roleXML{Path: path, RoleName: name, RoleID: r.id, Arn: r.ARN, CreateDate: time.Unix(0, 0).UTC().Format(time.RFC3339),
		MaxSessionDuration: int(r.MaxSessionDuration / time.Second)}
	if r.PermissionsBoundary != "" {
		out.PermissionsBoundary = &struct {
			PermissionsBoundaryType string
			PermissionsBoundaryArn  string
		}{"Policy", r.PermissionsBoundary}
	}
	return struct {
		XMLName xml.Name `xml:"GetRoleResult"`
		Role    roleXML
	}{Role: out}, nil
}

func policyName(params url.Values) (string, *apiError) {
	name := params.Get("PolicyName")
	if !policyNameRe.MatchString(name) {
		return "", validationError("1 validation error detected: Value at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", policyNameRe)
	}
	return name, nil
}

func (s *Server) putRolePolicy(params url.Values) (any, *apiError) {
	r, err := s.roleByNameLocked(params)
	if err != nil {
		return nil, err
	}
	name, err := policyName(params)
	if err != nil {
		return nil, err
	}
	doc := params.Get("PolicyDocument")
	if err := checkPattern("policyDocument", doc, policyCharsRe); err != nil {
		return nil, err
	}
	if _, err := parsePolicy(doc); err != nil {
		return nil, err
	}
	total := policyChars(doc)
	for other, d := range s.inline[r.ARN] {
		if other != name {
			total += policyChars(d)
		}
	}
	if total > maxInlineRoleChars {
		return nil, &apiError{409, "LimitExceeded", "Maximum policy size of 10240 bytes exceeded for role " + r.ARN[strings.LastIndex(r.ARN, "/")+1:]}
	}
	if s.inline[r.ARN] == nil {
		s.inline[r.ARN] = map[string]string{}
	}
	s.inline[r.ARN][name] = doc
	return struct {
		XMLName xml.Name `xml:"PutRolePolicyResult"`
	}{}, nil
}

func (s *Server) getRolePolicy(params url.Values) (any, *apiError) {
	r, name, doc, err := s.inlineLocked(params)
	if err != nil {
		return nil, err
	}
	// IAM answers the document URL-encoded.
	return struct {
		XMLName        xml.Name `xml:"GetRolePolicyResult"`
		RoleName       string
		PolicyName     string
		PolicyDocument string
	}{RoleName: r.ARN[strings.LastIndex(r.ARN, "/")+1:], PolicyName: name, PolicyDocument: strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")}, nil
}

func (s *Server) deleteRolePolicy(params url.Values) (any, *apiError) {
	r, name, _, err := s.inlineLocked(params)
	if err != nil {
		return nil, err
	}
	delete(s.inline[r.ARN], name)
	return struct {
		XMLName xml.Name `xml:"DeleteRolePolicyResult"`
	}{}, nil
}

// inlineLocked finds the named inline policy of the named role.
func (s *Server) inlineLocked(params url.Values) (Role, string, string, *apiError) {
	r, err := s.roleByNameLocked(params)
	if err != nil {
		return r, "", "", err
	}
	name, err := policyName(params)
	if err != nil {
		return r, "", "", err
	}
	doc, ok := s.inline[r.ARN][name]
	if !ok {
		return r, "", "", &apiError{404, "NoSuchEntity", "The role policy with name " + name + " cannot be found."}
	}
	return r, name, doc, nil
}

func (s *Server) listRolePolicies(params url.Values) (any, *apiError) {
	r, err := s.roleByNameLocked(params)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for n := range s.inline[r.ARN] {
		names = append(names, n)
	}
	sort.Strings(names)
	return struct {
		XMLName     xml.Name `xml:"ListRolePoliciesResult"`
		PolicyNames []string `xml:"PolicyNames>member"`
		IsTruncated bool
	}{PolicyNames: names}, nil
}

// RolePolicy is an inline policy of a role as the server holds it.
func (s *Server) RolePolicy(roleARN, name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := s.inline[roleARN][name]
	return doc, ok
}

// RolePolicyNames lists a role's inline policies.
func (s *Server) RolePolicyNames(roleARN string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.inline[roleARN] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// iamRoleAction serves the role calls; ok is false for another action.
func (s *Server) iamRoleAction(action string, params url.Values) (any, *apiError, bool) {
	calls := map[string]func(url.Values) (any, *apiError){
		"GetRole": s.getRole, "PutRolePolicy": s.putRolePolicy, "GetRolePolicy": s.getRolePolicy,
		"DeleteRolePolicy": s.deleteRolePolicy, "ListRolePolicies": s.listRolePolicies,
	}
	call, ok := calls[action]
	if !ok {
		return nil, nil, false
	}
	res, err := call(params)
	return res, err, true
}
