package awshmac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

var (
	sessionNameRe = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	federationRe  = regexp.MustCompile(`^[\w+=,.@-]{2,32}$`)
	mfaCodeRe     = regexp.MustCompile(`^\d{6}$`)
)

// pathCreds is the one path to a role's credentials: no alias (such as
// Vault's AWS engine's sts/), so that a policy on creds/<role> says all
// there is to say about who may mint them.
func pathCreds(b *backend) *framework.Path {
	const suffix = "credentials"
	return &framework.Path{
		Pattern: "creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: suffix,
		},
		Fields: map[string]*framework.FieldSchema{
			"name":              {Type: framework.TypeString, Description: "Name of the role, exactly as written.", Required: true},
			"role_arn":          {Type: framework.TypeString, Description: "Which of the role's role_arns to assume (assumed_role); default the first."},
			"role_session_name": {Type: framework.TypeString, Description: "Session name (assumed_role) or federated user name (federation_token), only where the role's allowed_session_names lets the caller choose; default from the role's role_session_name_template, else derived from the caller."},
			"ttl":               {Type: framework.TypeDurationSecond, Description: "Lifetime of the credentials, at most the role's max_sts_ttl and Vault's max lease TTL for the mount; default the role's default_sts_ttl."},
			"mfa_code":          {Type: framework.TypeString, Description: "Current code of the role's MFA device, when it has one."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathCredsRead,
				Summary:      "Mint STS credentials for a role.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate"},
				Responses:    credsResponses,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathCredsRead,
				Summary:      "Mint STS credentials for a role, with options.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate", OperationSuffix: suffix + "-with-parameters"},
				Responses:    credsResponses,
			},
		},
		HelpSynopsis:    pathCredsHelpSyn,
		HelpDescription: pathCredsHelpDesc,
	}
}

var credsResponses = map[int][]framework.Response{http.StatusOK: {{
	Description: "OK",
	Fields: map[string]*framework.FieldSchema{
		"access_key":     {Type: framework.TypeString, Description: "Temporary access key ID."},
		"secret_key":     {Type: framework.TypeString, Description: "Temporary secret access key."},
		"session_token":  {Type: framework.TypeString, Description: "Session token."},
		"security_token": {Type: framework.TypeString, Description: "The session token again, for older templates."},
		"arn":            {Type: framework.TypeString, Description: "Assumed-role or federated-user ARN; empty for session_token."},
		"expiration":     {Type: framework.TypeString, Description: "When the credentials expire, RFC 3339."},
		"ttl":            {Type: framework.TypeInt, Description: "Seconds until expiration."},
	},
}}}

const secretCredsType = "aws_hmac_sts"

func secretCreds(b *backend) *framework.Secret {
	return &framework.Secret{
		Type: secretCredsType,
		Fields: map[string]*framework.FieldSchema{
			"access_key": {Type: framework.TypeString, Description: "Temporary access key ID."},
		},
		// A deny_session lease's session is denied in AWS (revocation.go);
		// other STS credentials cannot be revoked, and revoking their lease
		// only forgets it. An error makes Vault try again.
		Revoke: func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			return nil, b.revokeCreds(ctx, req)
		},
		Renew: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return logical.ErrorResponse("STS credentials cannot be renewed; read creds again for new ones"), nil
		},
	}
}

func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, err := b.existingRole(ctx, req.Storage, name)
	if err != nil {
		return b.respond(nil, err)
	}
	in, err := parseCredsRequest(role, d, b.System().MaxLeaseTTL())
	if err != nil {
		return b.respond(nil, err)
	}
	c, err := b.callerOf(req, role)
	if err != nil {
		return b.respond(nil, err)
	}
	if in.identity, err = identityFor(role, name, c, in.askedName); err != nil {
		return b.respond(nil, err)
	}
	if err := b.tagForRevocation(ctx, req.Storage, role, &in.identity); err != nil {
		return b.respond(nil, err)
	}
	var creds stscreds.Credentials
	issued := time.Now().UTC().Truncate(time.Second)
	err = b.withEngine(ctx, req.Storage, func(e *engine) error {
		creds, err = e.mint(ctx, role, in)
		return err
	})
	if err != nil {
		return b.respond(nil, err)
	}
	return b.respond(b.credsResponse(name, role, in.roleARN, creds, issued))
}

// tagForRevocation marks a deny_session role's session as this mount's,
// for the kill switch (roles/:name/revoke-sessions).
func (b *backend) tagForRevocation(ctx context.Context, s logical.Storage, role *roleEntry, id *sessionIdentity) error {
	if role.RevokeMode != revokeModeDenySession {
		return nil
	}
	mountID, err := b.mountID(ctx, s)
	if err != nil {
		return err
	}
	id.tags = append(id.tags, stscreds.Tag{Key: mountTagKey, Value: mountID})
	return nil
}

// credsRequest is what a caller asked of creds/, checked against the role.
type credsRequest struct {
	ttl       time.Duration
	mfaCode   string
	roleARN   string
	askedName string
	identity  sessionIdentity
}

// parseCredsRequest reads the caller's options; the lifetime is bounded by
// the role and by Vault's max lease TTL for the mount.
func parseCredsRequest(role *roleEntry, d *framework.FieldData, vaultMax time.Duration) (credsRequest, error) {
	if role.signOnly() {
		return credsRequest{}, badInput("name: this role only signs (credential_type none); it mints no credentials")
	}
	limit, limitName := role.MaxSTSTTL, "the role's max_sts_ttl"
	if vaultMax > 0 && vaultMax < limit {
		limit, limitName = vaultMax, "Vault's max lease TTL for this mount"
	}
	in := credsRequest{ttl: min(role.DefaultSTSTTL, limit)}
	if v, ok := d.GetOk("ttl"); ok {
		in.ttl = time.Duration(v.(int)) * time.Second
	}
	if minTTL := stsTTLLimits[role.CredentialType].min; in.ttl < minTTL || in.ttl > limit {
		return in, badInput("ttl must be between %s and %s, %s", minTTL, limit, limitName)
	}
	in.mfaCode = strings.TrimSpace(d.Get("mfa_code").(string))
	switch {
	case role.MFASerialNumber != "" && in.mfaCode == "":
		return in, badInput("mfa_code is required: the role uses MFA device %s", role.MFASerialNumber)
	case role.MFASerialNumber == "" && in.mfaCode != "":
		return in, badInput("mfa_code given but the role has no mfa_serial_number")
	case in.mfaCode != "" && !mfaCodeRe.MatchString(in.mfaCode):
		return in, badInput("mfa_code must be 6 digits")
	}
	in.askedName = strings.TrimSpace(d.Get("role_session_name").(string))
	var err error
	in.roleARN, err = parseRoleARN(role, d)
	return in, err
}

func parseRoleARN(role *roleEntry, d *framework.FieldData) (string, error) {
	roleARN := strings.TrimSpace(d.Get("role_arn").(string))
	switch {
	case role.CredentialType != credentialAssumedRole && roleARN != "":
		return "", badInput("role_arn applies only to assumed_role roles")
	case role.CredentialType != credentialAssumedRole:
		return "", nil
	case roleARN == "":
		return role.RoleARNs[0], nil
	case !slices.Contains(role.RoleARNs, roleARN):
		return "", badInput("role_arn is not one of the role's role_arns")
	}
	return roleARN, nil
}

// mint calls the role's STS operation within sts_timeout.
func (e *engine) mint(ctx context.Context, role *roleEntry, in credsRequest) (stscreds.Credentials, error) {
	timeout := e.cfg.stsTimeout()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var creds stscreds.Credentials
	var err error
	op := map[string]string{credentialSessionToken: "GetSessionToken", credentialAssumedRole: "AssumeRole", credentialFederationToken: "GetFederationToken"}[role.CredentialType]
	id := in.identity
	switch role.CredentialType {
	case credentialSessionToken:
		creds, err = stscreds.NewSessionTokenProvider(e.sts, func(o *stscreds.SessionTokenOptions) {
			o.Duration, o.SerialNumber, o.TokenCode = in.ttl, role.MFASerialNumber, in.mfaCode
		}).Mint(callCtx)
	case credentialAssumedRole:
		creds, err = e.assumeRole(callCtx, role, in)
	case credentialFederationToken:
		creds, err = stscreds.NewFederationTokenProvider(e.sts, id.name, func(o *stscreds.FederationTokenOptions) {
			o.Duration, o.Policy, o.PolicyARNs, o.Tags = in.ttl, role.PolicyDocument, role.PolicyARNs, id.tags
		}).Mint(callCtx)
	}
	if err != nil {
		return creds, classifySTS(ctx, op, timeout, err)
	}
	return creds, nil
}

// assumeRole assumes the role's role ARN and then each role of its
// role_chain with the previous session; the policy and tags go on the last.
func (e *engine) assumeRole(ctx context.Context, role *roleEntry, in credsRequest) (stscreds.Credentials, error) {
	id := in.identity
	last := stscreds.AssumeRoleOptions{RoleSessionName: id.name, Duration: in.ttl,
		Policy: role.PolicyDocument, PolicyARNs: role.PolicyARNs, Tags: id.tags, TransitiveTagKeys: role.TransitiveTagKeys}
	hops := role.chainHops()
	first := last
	if len(hops) > 0 {
		first = stscreds.AssumeRoleOptions{RoleSessionName: id.name, Duration: 15 * time.Minute}
	}
	first.ExternalID, first.SourceIdentity = role.ExternalID, id.sourceIdentity
	first.SerialNumber, first.TokenCode = role.MFASerialNumber, in.mfaCode
	creds, err := stscreds.NewAssumeRoleProvider(e.sts, in.roleARN, func(o *stscreds.AssumeRoleOptions) { *o = first }).Mint(ctx)
	if err != nil || len(hops) == 0 {
		return creds, err
	}
	return stscreds.Chain(ctx, e.cfg.awsConfig(e.key, e.signer), creds, hops, id.name, last)
}

// credsResponse is the credentials with a lease exactly as long as they
// live; a deny_session role's lease keeps what revoking it needs.
func (b *backend) credsResponse(name string, role *roleEntry, roleARN string, creds stscreds.Credentials, issued time.Time) (*logical.Response, error) {
	left := time.Until(creds.Expires).Truncate(time.Second)
	if left <= 0 {
		return nil, fmt.Errorf("STS returned credentials that already expired at %s", creds.Expires.Format(time.RFC3339))
	}
	resp := b.Secret(secretCredsType).Response(map[string]any{
		"access_key":     creds.AccessKeyID,
		"secret_key":     creds.SecretAccessKey,
		"session_token":  creds.SessionToken,
		"security_token": creds.SessionToken,
		"arn":            creds.ARN,
		"expiration":     creds.Expires.UTC().Format(time.RFC3339),
		"ttl":            int64(left / time.Second),
	}, map[string]any{"role": name, "access_key": creds.AccessKeyID})
	if role.RevokeMode == revokeModeDenySession {
		if len(role.RoleChain) > 0 {
			roleARN = role.sessionRoleARNs()[0]
		}
		// Credentials that could not be revoked are not handed out.
		if !assumedRoleIDRe.MatchString(creds.AssumedRoleID) {
			return nil, &stsError{op: "AssumeRole", detail: "answered without a valid AssumedRoleId; the session could not be revoked, so it is not returned"}
		}
		maps.Copy(resp.Secret.InternalData, leaseSession{roleARN: roleARN, assumedRoleID: creds.AssumedRoleID, issued: issued, expires: creds.Expires}.internalData())
	}
	// The lease cannot be renewed: read again for new credentials.
	resp.Secret.TTL = left
	resp.Secret.MaxTTL = left
	resp.Secret.Renewable = false
	return resp, nil
}

// defaultSessionName derives a session name from the caller's display name.
func defaultSessionName(displayName, role string, federation bool) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	base := safeNameRe.ReplaceAllString(displayName, "-")
	if base == "" {
		base = "vault-" + role
	}
	limit := 64 - 9
	if federation {
		limit = 32 - 9
	}
	if len(base) > limit {
		base = base[:limit]
	}
	return base + "-" + hex.EncodeToString(r[:])
}

const pathCredsHelpSyn = `Mint STS credentials for a role, with a Vault lease.`

const pathCredsHelpDesc = `
Reading creds/<role> calls the role's STS operation, signed
with the configured key, and returns access_key, secret_key, session_token (and
security_token, the same value), arn, expiration and ttl. The lease lasts as
long as the credentials and is not renewable; read again for new ones.
Revoking the lease of a role with revoke_mode deny_session denies its session
in AWS (an inline policy on the target role; see docs/revocation.md); for
other roles it does not revoke the credentials, which live until they expire.

Writing accepts role_arn (one of the role's role_arns), role_session_name, ttl
(up to the role's max_sts_ttl) and mfa_code.
`
