package awshmac

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{pathRoleList(b), pathRole(b)}
}

func pathRoleList(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "roles/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "roles",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{
				Callback:     b.pathRolesList,
				Summary:      "List the roles.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"},
				Responses: map[int][]framework.Response{http.StatusOK: {{
					Description: "OK",
					Fields:      map[string]*framework.FieldSchema{"keys": {Type: framework.TypeStringSlice}},
				}}},
			},
		},
		HelpSynopsis:    pathRolesListHelpSyn,
		HelpDescription: pathRolesListHelpDesc,
	}
}

func pathRole(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "roles/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "role",
		},
		Fields:         roleFields(),
		ExistenceCheck: b.roleExists,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathRoleWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Create a role.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "write"},
				Responses:                   noContent,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRoleWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Update a role; fields left out keep their values.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "write"},
				Responses:                   noContent,
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathRoleRead,
				Summary:      "Read a role.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
				Responses:    map[int][]framework.Response{http.StatusOK: {{Description: "OK"}}},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathRoleDelete,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Delete a role.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "delete"},
				Responses:                   noContent,
			},
		},
		HelpSynopsis:    pathRoleHelpSyn,
		HelpDescription: pathRoleHelpDesc,
	}
}

// roleFields is the role's schema: credentials, signing scope, session identity.
func roleFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name":                {Type: framework.TypeString, Description: "Name of the role, exactly as written.", Required: true},
		"credential_type":     {Type: framework.TypeString, AllowedValues: anySlice(credentialTypes), Description: "STS call that mints the credentials: session_token, assumed_role or federation_token; none (the default) for a role that only signs."},
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
		"allowed_methods":     {Type: framework.TypeCommaStringSlice, Description: "HTTP methods sign/ may sign (GET, PUT, ...). Empty: any."},
		"allowed_paths":       {Type: framework.TypeCommaStringSlice, Description: "Globs on the path as the service reads it (* spans slashes): for S3 /bucket/key in path-style and virtual-hosted requests alike, e.g. /reports-bucket/2026/*; for others the path with dot segments resolved, and encoded /, \\ or . refused. Empty: any."},
		"allowed_actions":     {Type: framework.TypeCommaStringSlice, Description: "Operations sign/ may sign, service:Operation as the SDKs and CloudTrail name them (sts:GetCallerIdentity, s3:GetObject, lambda:Invoke), * globs allowed; the operation is read from the request as the service reads it, from AWS's service models, and a request the scope cannot place is refused. Operations that mint credentials or change access (every STS, IAM and SSO action, s3:PutBucketPolicy, ecr:GetAuthorizationToken, rds-db:connect, ...) are signed only when listed exactly; no glob reaches them. Empty: any other operation."},
		"max_presign_expires": {Type: framework.TypeDurationSecond, Description: "Longest life of a presigned URL. Default: 7 days."},
		"sign_with":           {Type: framework.TypeString, AllowedValues: anySlice(signWiths), Description: "session (the default for a role with a credential_type and no mfa_serial_number): sign/ signs with the role's own STS session, so AWS enforces the role's policy on every request signed too; key (the default otherwise): with the configured key."},
		"allowed_schemes":     {Type: framework.TypeCommaStringSlice, Description: "URL schemes sign/ may sign: https, http. Default: https; http to loopback hosts is always allowed, since no network carries it."},

		"role_session_name_template": {Type: framework.TypeString, Description: "Session name from the caller's identity: {{identity.entity.name}}, {{identity.entity.metadata.KEY}}, {{identity.entity.aliases.ACCESSOR.name}}, {{display_name}}, {{random}}."},
		"source_identity_template":   {Type: framework.TypeString, Description: "SourceIdentity from the caller's identity, same directives (assumed_role)."},
		"allowed_session_names":      {Type: framework.TypeCommaStringSlice, Description: "Globs of the session names a caller may choose with role_session_name. Empty: callers may not choose."},
		"audit_session_tags":         {Type: framework.TypeBool, Description: "Tag sessions with vault-request-id and vault-entity-id (and set SourceIdentity to the entity ID when nothing else does), to join CloudTrail to Vault's audit log."},

		"revoke_mode": {Type: framework.TypeString, AllowedValues: anySlice(revokeModes), Description: "none (the default): revoking a creds/ lease only forgets it. deny_session (assumed_role): revoking a lease denies its session in AWS through an inline policy on the target role, which must have a permissions boundary; session names must then be unique ({{random}} in the template)."},
		"role_chain":  {Type: framework.TypeStringSlice, Description: "Roles assumed one after the other from the role_arns session, each ARN optionally followed by #external-id; policies and tags go on the last, whose session (at most 1h) is returned."},
	}
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	role, err := b.role(ctx, req.Storage, d.Get("name").(string))
	return role != nil, err
}

func (b *backend) pathRolesList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolePrefix)
	return b.respond(logical.ListResponse(names), err)
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role, err := b.role(ctx, req.Storage, d.Get("name").(string))
	if err != nil || role == nil {
		return b.respond(nil, err)
	}
	return b.respond(&logical.Response{Data: role.toResponseData()}, nil)
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.respond(nil, b.putRole(ctx, req.Storage, d.Get("name").(string), nil))
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if !roleNameRe.MatchString(name) {
		return b.respond(nil, badInput("name must be 1 to 128 letters, digits, '.', '@', '-' or '_'"))
	}
	existing, err := b.role(ctx, req.Storage, name)
	if err != nil {
		return b.respond(nil, err)
	}
	role := &roleEntry{}
	if existing != nil {
		*role = *existing // cached entries are shared: change a copy
	}
	parseRoleFields(role, d)
	role.applyDefaults()
	if err := role.validate(); err != nil {
		return b.respond(nil, err)
	}
	if err := b.checkRevocable(ctx, req.Storage, role); err != nil {
		return b.respond(nil, err)
	}
	return b.respond(nil, b.putRole(ctx, req.Storage, name, role))
}

// parseRoleFields copies the fields present in d onto role; every
// changed field gets a new value, never an edit of a shared one.
func parseRoleFields(role *roleEntry, d *framework.FieldData) {
	strs := map[string]*string{
		"credential_type": &role.CredentialType, "policy_document": &role.PolicyDocument,
		"external_id": &role.ExternalID, "source_identity": &role.SourceIdentity, "mfa_serial_number": &role.MFASerialNumber,
		"sign_with": &role.SignWith, "role_session_name_template": &role.RoleSessionNameTemplate,
		"source_identity_template": &role.SourceIdentityTemplate, "revoke_mode": &role.RevokeMode,
	}
	parseStrings(d, strs)
	lists := map[string]*[]string{
		"role_arns": &role.RoleARNs, "policy_arns": &role.PolicyARNs, "transitive_tag_keys": &role.TransitiveTagKeys,
		"allowed_services": &role.AllowedServices, "allowed_regions": &role.AllowedRegions, "allowed_hosts": &role.AllowedHosts,
		"allowed_methods": &role.AllowedMethods, "allowed_paths": &role.AllowedPaths, "allowed_actions": &role.AllowedActions,
		"allowed_session_names": &role.AllowedSessionNames, "allowed_schemes": &role.AllowedSchemes,
		"role_chain": &role.RoleChain,
	}
	for field, dst := range lists {
		if v, ok := d.GetOk(field); ok {
			*dst = cleanList(v.([]string))
		}
	}
	if v, ok := d.GetOk("session_tags"); ok {
		role.SessionTags = v.(map[string]string)
	}
	if v, ok := d.GetOk("audit_session_tags"); ok {
		role.AuditSessionTags = v.(bool)
	}
	for field, dst := range map[string]*time.Duration{"default_sts_ttl": &role.DefaultSTSTTL, "max_sts_ttl": &role.MaxSTSTTL, "max_presign_expires": &role.MaxPresignExpires} {
		if v, ok := d.GetOk(field); ok {
			*dst = time.Duration(v.(int)) * time.Second
		}
	}
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

var noContent = map[int][]framework.Response{http.StatusNoContent: {{Description: "No content"}}}

const pathRolesListHelpSyn = `List the roles.`
const pathRolesListHelpDesc = `Lists the names of the roles defined on this mount.`

const pathRoleHelpSyn = `Manage a role: which STS credentials it mints and what sign/ may sign with it.`

const pathRoleHelpDesc = `
A role names the STS call that mints its credentials (credential_type):
session_token (GetSessionToken), assumed_role (AssumeRole, with role_arns,
policies, session tags, transitive tag keys, external_id, source_identity),
federation_token (GetFederationToken, with policies and tags), or none (the
default): a role that only signs. default_sts_ttl and max_sts_ttl bound the
credentials' life within STS's limits and Vault's max lease TTL.

allowed_services, allowed_regions and allowed_hosts bound what sign/<role> may
sign (empty lists allow nothing); allowed_schemes, allowed_methods,
allowed_paths, allowed_actions and max_presign_expires narrow it further.
sign/ reads the operation a request runs the way the service's own protocol
reads it (AWS's service models: the Query protocol's Action in the query and
the whole body, JSON's X-Amz-Target, REST's method, path and subresource), and
refuses what it cannot place when the role limits actions. Operations that
mint credentials or change access (every STS, IAM and SSO action, bucket
policies and ACLs, registry and database tokens, ...) are signed only when
allowed_actions lists them one by one, such as sts:GetCallerIdentity. A role
with a credential_type signs with its own STS session (sign_with=session)
unless sign_with=key is written.

Sessions are named from the Vault caller: role_session_name_template,
source_identity_template and session_tags values may use Vault's identity
templating ({{identity.entity.name}}, {{identity.entity.metadata.KEY}}, ...),
{{display_name}} and {{random}}. Callers choose a session name only within
allowed_session_names. audit_session_tags tags sessions with the Vault request
and entity IDs. Role names are exact: DEPLOY and deploy are two roles.

revoke_mode deny_session (assumed_role, target roles with a permissions
boundary, unique session names) makes revoking a creds/ lease deny its session
in AWS; roles/<name>/revoke-sessions denies every session this mount minted
for the role until now. role_chain assumes further roles, each with the
previous session; the last one's session, at most an hour, is returned.
`
