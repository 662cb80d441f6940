package awshmac

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	credentialSessionToken    = "session_token"
	credentialAssumedRole     = "assumed_role"
	credentialFederationToken = "federation_token"
)

var credentialTypes = []string{credentialSessionToken, credentialAssumedRole, credentialFederationToken}

// STS duration limits per credential type.
var stsTTLLimits = map[string]struct{ min, max time.Duration }{
	credentialSessionToken:    {15 * time.Minute, 36 * time.Hour},
	credentialAssumedRole:     {15 * time.Minute, 12 * time.Hour},
	credentialFederationToken: {15 * time.Minute, 36 * time.Hour},
}

var (
	roleNameRe  = regexp.MustCompile(`^[\w.@-]{1,128}$`)
	roleARNRe   = regexp.MustCompile(`^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	policyARNRe = regexp.MustCompile(`^arn:aws[\w-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}$`)
	tagRe       = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	externalRe  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	sourceIDRe  = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	mfaSerialRe = regexp.MustCompile(`^[\w+=/:,.@-]{9,256}$`)
	serviceRe   = regexp.MustCompile(`^[a-z0-9*][a-z0-9.*-]{0,62}$`)
	regionOrAny = regexp.MustCompile(`^(\*|[a-z]{2}(-[a-z]+)+-\d+)$`)
	hostRe      = regexp.MustCompile(`^[a-zA-Z0-9*][a-zA-Z0-9.*-]*(:\d{1,5})?$`)
)

// roleEntry is a role as stored.
type roleEntry struct {
	CredentialType    string            `json:"credential_type"`
	RoleARNs          []string          `json:"role_arns,omitempty"`
	PolicyARNs        []string          `json:"policy_arns,omitempty"`
	PolicyDocument    string            `json:"policy_document,omitempty"`
	SessionTags       map[string]string `json:"session_tags,omitempty"`
	TransitiveTagKeys []string          `json:"transitive_tag_keys,omitempty"`
	ExternalID        string            `json:"external_id,omitempty"`
	SourceIdentity    string            `json:"source_identity,omitempty"`
	MFASerialNumber   string            `json:"mfa_serial_number,omitempty"`
	DefaultSTSTTL     time.Duration     `json:"default_sts_ttl"`
	MaxSTSTTL         time.Duration     `json:"max_sts_ttl"`
	AllowedServices   []string          `json:"allowed_services,omitempty"`
	AllowedRegions    []string          `json:"allowed_regions,omitempty"`
	AllowedHosts      []string          `json:"allowed_hosts,omitempty"`
}

func (r *roleEntry) toResponseData() map[string]any {
	tags := r.SessionTags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{
		"credential_type":     r.CredentialType,
		"role_arns":           nonNil(r.RoleARNs),
		"policy_arns":         nonNil(r.PolicyARNs),
		"policy_document":     r.PolicyDocument,
		"session_tags":        tags,
		"transitive_tag_keys": nonNil(r.TransitiveTagKeys),
		"external_id":         r.ExternalID,
		"source_identity":     r.SourceIdentity,
		"mfa_serial_number":   r.MFASerialNumber,
		"default_sts_ttl":     int64(r.DefaultSTSTTL / time.Second),
		"max_sts_ttl":         int64(r.MaxSTSTTL / time.Second),
		"allowed_services":    nonNil(r.AllowedServices),
		"allowed_regions":     nonNil(r.AllowedRegions),
		"allowed_hosts":       nonNil(r.AllowedHosts),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func getRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	entry, err := s.Get(ctx, rolePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("read role %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	role := new(roleEntry)
	if err := entry.DecodeJSON(role); err != nil {
		return nil, fmt.Errorf("decode role %q: %w", name, err)
	}
	return role, nil
}

// roleOrError reads a role for a path that needs one; a missing role is
// the caller's mistake.
func roleOrError(ctx context.Context, s logical.Storage, name string) (*roleEntry, *logical.Response, error) {
	role, err := getRole(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	if role == nil {
		return nil, logical.ErrorResponse("name: role %q does not exist", name), nil
	}
	return role, nil, nil
}

func putRole(ctx context.Context, s logical.Storage, name string, role *roleEntry) error {
	entry, err := logical.StorageEntryJSON(rolePrefix+name, role)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathRolesList, Summary: "List the roles.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"},
					Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: map[string]*framework.FieldSchema{"keys": {Type: framework.TypeStringSlice}}}}}},
			},
			HelpSynopsis:    pathRolesListHelpSyn,
			HelpDescription: pathRolesListHelpDesc,
		},
		{
			Pattern: "roles/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "role",
			},
			Fields: map[string]*framework.FieldSchema{
				"name":                {Type: framework.TypeLowerCaseString, Description: "Name of the role.", Required: true},
				"credential_type":     {Type: framework.TypeString, AllowedValues: []any{credentialSessionToken, credentialAssumedRole, credentialFederationToken}, Description: "STS call that mints the credentials: session_token, assumed_role or federation_token."},
				"role_arns":           {Type: framework.TypeCommaStringSlice, Description: "IAM role ARNs the caller may assume (assumed_role). The first is the default."},
				"policy_arns":         {Type: framework.TypeCommaStringSlice, Description: "Managed policy ARNs that limit the session (assumed_role, federation_token); at most 10."},
				"policy_document":     {Type: framework.TypeString, Description: "Inline session policy, JSON (assumed_role, federation_token)."},
				"session_tags":        {Type: framework.TypeKVPairs, Description: "Session tags, key=value (assumed_role, federation_token); at most 50."},
				"transitive_tag_keys": {Type: framework.TypeCommaStringSlice, Description: "Session tag keys that persist through role chaining (assumed_role)."},
				"external_id":         {Type: framework.TypeString, Description: "External ID the role's trust policy requires (assumed_role)."},
				"source_identity":     {Type: framework.TypeString, Description: "Source identity set on the session (assumed_role)."},
				"mfa_serial_number":   {Type: framework.TypeString, Description: "MFA device serial or ARN; callers then give mfa_code (session_token, assumed_role)."},
				"default_sts_ttl":     {Type: framework.TypeDurationSecond, Description: "Credential lifetime when the caller asks for none. Default: 1h."},
				"max_sts_ttl":         {Type: framework.TypeDurationSecond, Description: "Longest lifetime a caller may ask for. Default: STS's maximum for the type (36h, 12h for assumed_role)."},
				"allowed_services":    {Type: framework.TypeCommaStringSlice, Description: "Services sign/ may sign for (e.g. s3, sts); * allows all. Empty: none."},
				"allowed_regions":     {Type: framework.TypeCommaStringSlice, Description: "Regions sign/ may sign for; * allows all. Empty: none."},
				"allowed_hosts":       {Type: framework.TypeCommaStringSlice, Description: "Hosts sign/ may sign for; a leading *. matches subdomains. Empty: none."},
			},
			ExistenceCheck: b.roleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathRoleWrite, Summary: "Create a role.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}, Responses: noContent},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathRoleWrite, Summary: "Update a role; fields left out keep their values.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}, Responses: noContent},
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathRoleRead, Summary: "Read a role.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
					Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK"}}}},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathRoleDelete, Summary: "Delete a role.",
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"}, Responses: noContent},
			},
			HelpSynopsis:    pathRoleHelpSyn,
			HelpDescription: pathRoleHelpDesc,
		},
	}
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	role, err := getRole(ctx, req.Storage, d.Get("name").(string))
	return role != nil, err
}

func (b *backend) pathRolesList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role, err := getRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || role == nil {
		return nil, err
	}
	return &logical.Response{Data: role.toResponseData()}, nil
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, rolePrefix+d.Get("name").(string))
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if !roleNameRe.MatchString(name) {
		return logical.ErrorResponse("name must be 1 to 128 letters, digits, '.', '@', '-' or '_'"), nil
	}
	role, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		role = &roleEntry{}
	}
	strs := map[string]*string{
		"credential_type": &role.CredentialType, "policy_document": &role.PolicyDocument,
		"external_id": &role.ExternalID, "source_identity": &role.SourceIdentity, "mfa_serial_number": &role.MFASerialNumber,
	}
	for field, dst := range strs {
		if v, ok := d.GetOk(field); ok {
			*dst = strings.TrimSpace(v.(string))
		}
	}
	lists := map[string]*[]string{
		"role_arns": &role.RoleARNs, "policy_arns": &role.PolicyARNs, "transitive_tag_keys": &role.TransitiveTagKeys,
		"allowed_services": &role.AllowedServices, "allowed_regions": &role.AllowedRegions, "allowed_hosts": &role.AllowedHosts,
	}
	for field, dst := range lists {
		if v, ok := d.GetOk(field); ok {
			*dst = cleanList(v.([]string))
		}
	}
	if v, ok := d.GetOk("session_tags"); ok {
		role.SessionTags = v.(map[string]string)
	}
	if v, ok := d.GetOk("default_sts_ttl"); ok {
		role.DefaultSTSTTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("max_sts_ttl"); ok {
		role.MaxSTSTTL = time.Duration(v.(int)) * time.Second
	}
	if msg := validateRole(role); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	if err := putRole(ctx, req.Storage, name, role); err != nil {
		return nil, err
	}
	return nil, nil
}

func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// validateRole checks a role against STS's limits and fills defaults. It
// returns a message naming the field at fault.
func validateRole(r *roleEntry) string {
	if r.CredentialType == "" {
		return "credential_type is required: session_token, assumed_role or federation_token"
	}
	if !slices.Contains(credentialTypes, r.CredentialType) {
		return fmt.Sprintf("credential_type %q is not one of %s", r.CredentialType, strings.Join(credentialTypes, ", "))
	}
	assumed, federation, session := r.CredentialType == credentialAssumedRole, r.CredentialType == credentialFederationToken, r.CredentialType == credentialSessionToken
	switch {
	case assumed && len(r.RoleARNs) == 0:
		return "role_arns is required for credential_type assumed_role"
	case !assumed && len(r.RoleARNs) > 0:
		return "role_arns is only for credential_type assumed_role"
	case session && (len(r.PolicyARNs) > 0 || r.PolicyDocument != "" || len(r.SessionTags) > 0):
		return "policy_arns, policy_document and session_tags do not apply to credential_type session_token"
	case !assumed && (len(r.TransitiveTagKeys) > 0 || r.ExternalID != "" || r.SourceIdentity != ""):
		return "transitive_tag_keys, external_id and source_identity are only for credential_type assumed_role"
	case federation && r.MFASerialNumber != "":
		return "mfa_serial_number does not apply to credential_type federation_token"
	case len(r.PolicyARNs) > 10:
		return "policy_arns: at most 10 managed policies"
	case len(r.SessionTags) > 50:
		return "session_tags: at most 50 tags"
	case len(r.TransitiveTagKeys) > 50:
		return "transitive_tag_keys: at most 50 keys"
	}
	for _, a := range r.RoleARNs {
		if !roleARNRe.MatchString(a) {
			return fmt.Sprintf("role_arns: %q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", a)
		}
	}
	for _, a := range r.PolicyARNs {
		if !policyARNRe.MatchString(a) {
			return fmt.Sprintf("policy_arns: %q is not an IAM policy ARN", a)
		}
	}
	if r.PolicyDocument != "" {
		var doc map[string]any
		if err := json.Unmarshal([]byte(r.PolicyDocument), &doc); err != nil {
			return "policy_document is not a JSON object: " + err.Error()
		}
		if len(r.PolicyDocument)+len(strings.Join(r.PolicyARNs, "")) > 2048 {
			return "policy_document and policy_arns together exceed STS's 2048 characters"
		}
		compact, _ := json.Marshal(doc)
		r.PolicyDocument = string(compact)
	}
	lowerTags := map[string]bool{}
	for k, v := range r.SessionTags {
		if len([]rune(k)) < 1 || len([]rune(k)) > 128 || !tagRe.MatchString(k) {
			return fmt.Sprintf("session_tags: key %q must be 1 to 128 letters, digits, spaces or _.:/=+-@", k)
		}
		if len([]rune(v)) > 256 || !tagRe.MatchString(v) {
			return fmt.Sprintf("session_tags: value of %q must be up to 256 letters, digits, spaces or _.:/=+-@", k)
		}
		if lowerTags[strings.ToLower(k)] {
			return fmt.Sprintf("session_tags: key %q repeats another in a different case; tag keys are case-insensitive", k)
		}
		lowerTags[strings.ToLower(k)] = true
	}
	for _, k := range r.TransitiveTagKeys {
		if !lowerTags[strings.ToLower(k)] {
			return fmt.Sprintf("transitive_tag_keys: %q is not one of session_tags", k)
		}
	}
	if r.ExternalID != "" && (len(r.ExternalID) < 2 || len(r.ExternalID) > 1224 || !externalRe.MatchString(r.ExternalID)) {
		return "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/-_"
	}
	if r.SourceIdentity != "" && (!sourceIDRe.MatchString(r.SourceIdentity) || strings.HasPrefix(strings.ToLower(r.SourceIdentity), "aws:")) {
		return "source_identity must be 2 to 64 characters of letters, digits and +=,.@-_, not starting with aws:"
	}
	if r.MFASerialNumber != "" && !mfaSerialRe.MatchString(r.MFASerialNumber) {
		return "mfa_serial_number must be 9 to 256 characters: a device serial or an MFA ARN"
	}
	limits := stsTTLLimits[r.CredentialType]
	if r.MaxSTSTTL == 0 {
		r.MaxSTSTTL = limits.max
	}
	if r.DefaultSTSTTL == 0 {
		r.DefaultSTSTTL = min(time.Hour, r.MaxSTSTTL)
	}
	switch {
	case r.MaxSTSTTL < limits.min || r.MaxSTSTTL > limits.max:
		return fmt.Sprintf("max_sts_ttl must be between %s and %s for %s", limits.min, limits.max, r.CredentialType)
	case r.DefaultSTSTTL < limits.min || r.DefaultSTSTTL > limits.max:
		return fmt.Sprintf("default_sts_ttl must be between %s and %s for %s", limits.min, limits.max, r.CredentialType)
	case r.DefaultSTSTTL > r.MaxSTSTTL:
		return "default_sts_ttl must not exceed max_sts_ttl"
	}
	for _, s := range r.AllowedServices {
		if !serviceRe.MatchString(s) {
			return fmt.Sprintf("allowed_services: %q is not a service signing name such as s3 or sts", s)
		}
	}
	for _, s := range r.AllowedRegions {
		if !regionOrAny.MatchString(s) {
			return fmt.Sprintf("allowed_regions: %q is not a region name or *", s)
		}
	}
	for _, h := range r.AllowedHosts {
		if !hostRe.MatchString(h) || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.") && h != "*") || strings.Count(h, "*") > 1 {
			return fmt.Sprintf("allowed_hosts: %q is not a host name, *.domain or *", h)
		}
	}
	return ""
}

const pathRolesListHelpSyn = `List the roles.`
const pathRolesListHelpDesc = `Lists the names of the roles defined on this mount.`

const pathRoleHelpSyn = `Manage a role: which STS credentials it mints and what sign/ may sign with it.`

const pathRoleHelpDesc = `
A role names the STS call that mints its credentials (credential_type):
session_token (GetSessionToken), assumed_role (AssumeRole, with role_arns,
policies, session tags, transitive tag keys, external_id, source_identity) or
federation_token (GetFederationToken, with policies and tags). default_sts_ttl
and max_sts_ttl bound the credentials' life within STS's limits.

allowed_services, allowed_regions and allowed_hosts bound what sign/<role> may
sign; empty lists allow nothing.
`
