package awshmac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	unsafeNameRe  = regexp.MustCompile(`[^\w+=,.@-]`)
)

func pathCreds(b *backend, prefix string) *framework.Path {
	suffix := map[string]string{"creds": "credentials", "sts": "sts-credentials"}[prefix]
	return &framework.Path{
		Pattern: prefix + "/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: suffix,
		},
		Fields: map[string]*framework.FieldSchema{
			"name":              {Type: framework.TypeLowerCaseString, Description: "Name of the role.", Required: true},
			"role_arn":          {Type: framework.TypeString, Description: "Which of the role's role_arns to assume (assumed_role); default the first."},
			"role_session_name": {Type: framework.TypeString, Description: "Session name (assumed_role) or federated user name (federation_token); default derived from the caller."},
			"ttl":               {Type: framework.TypeDurationSecond, Description: "Lifetime of the credentials, at most the role's max_sts_ttl; default the role's default_sts_ttl."},
			"mfa_code":          {Type: framework.TypeString, Description: "Current code of the role's MFA device, when it has one."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathCredsRead, Summary: "Mint STS credentials for a role.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate"}, Responses: credsResponses},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathCredsRead, Summary: "Mint STS credentials for a role, with options.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate", OperationSuffix: suffix + "-with-parameters"}, Responses: credsResponses},
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
		// STS credentials cannot be revoked before they expire; revoking the
		// lease only forgets it.
		Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return nil, nil
		},
		Renew: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return logical.ErrorResponse("STS credentials cannot be renewed; read creds again for new ones"), nil
		},
	}
}

func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	role, resp, err := roleOrError(ctx, req.Storage, name)
	if role == nil {
		return resp, err
	}

	ttl := role.DefaultSTSTTL
	if v, ok := d.GetOk("ttl"); ok {
		ttl = time.Duration(v.(int)) * time.Second
	}
	limits := stsTTLLimits[role.CredentialType]
	if ttl < limits.min || ttl > role.MaxSTSTTL {
		return logical.ErrorResponse("ttl must be between %s and the role's max_sts_ttl %s", limits.min, role.MaxSTSTTL), nil
	}

	mfaCode := strings.TrimSpace(d.Get("mfa_code").(string))
	switch {
	case role.MFASerialNumber != "" && mfaCode == "":
		return logical.ErrorResponse("mfa_code is required: the role uses MFA device %s", role.MFASerialNumber), nil
	case role.MFASerialNumber == "" && mfaCode != "":
		return logical.ErrorResponse("mfa_code given but the role has no mfa_serial_number"), nil
	case mfaCode != "" && !mfaCodeRe.MatchString(mfaCode):
		return logical.ErrorResponse("mfa_code must be 6 digits"), nil
	}

	roleARN := strings.TrimSpace(d.Get("role_arn").(string))
	if role.CredentialType == credentialAssumedRole {
		if roleARN == "" {
			roleARN = role.RoleARNs[0]
		} else if !slices.Contains(role.RoleARNs, roleARN) {
			return logical.ErrorResponse("role_arn %q is not one of the role's role_arns", roleARN), nil
		}
	} else if roleARN != "" {
		return logical.ErrorResponse("role_arn applies only to assumed_role roles"), nil
	}

	sessionName := strings.TrimSpace(d.Get("role_session_name").(string))
	if role.CredentialType == credentialSessionToken && sessionName != "" {
		return logical.ErrorResponse("role_session_name does not apply to session_token roles"), nil
	}
	if sessionName == "" {
		sessionName = defaultSessionName(req.DisplayName, name, role.CredentialType == credentialFederationToken)
	}
	if role.CredentialType == credentialFederationToken && !federationRe.MatchString(sessionName) {
		return logical.ErrorResponse("role_session_name must be 2 to 32 characters of letters, digits and +=,.@-_ for federation_token"), nil
	}
	if role.CredentialType == credentialAssumedRole && !sessionNameRe.MatchString(sessionName) {
		return logical.ErrorResponse("role_session_name must be 2 to 64 characters of letters, digits and +=,.@-_"), nil
	}

	_, _, client, err := b.client(ctx, req.Storage)
	if err != nil {
		return keyStoreResponse(req, err)
	}
	var tags []stscreds.Tag
	for k, v := range role.SessionTags {
		tags = append(tags, stscreds.Tag{Key: k, Value: v})
	}
	slices.SortFunc(tags, func(a, b stscreds.Tag) int { return strings.Compare(a.Key, b.Key) })

	var creds stscreds.Credentials
	switch role.CredentialType {
	case credentialSessionToken:
		creds, err = stscreds.NewSessionTokenProvider(client, func(o *stscreds.SessionTokenOptions) {
			o.Duration, o.SerialNumber, o.TokenCode = ttl, role.MFASerialNumber, mfaCode
		}).Mint(ctx)
	case credentialAssumedRole:
		creds, err = stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName, o.Duration = sessionName, ttl
			o.Policy, o.PolicyARNs, o.Tags, o.TransitiveTagKeys = role.PolicyDocument, role.PolicyARNs, tags, role.TransitiveTagKeys
			o.ExternalID, o.SourceIdentity = role.ExternalID, role.SourceIdentity
			o.SerialNumber, o.TokenCode = role.MFASerialNumber, mfaCode
		}).Mint(ctx)
	case credentialFederationToken:
		creds, err = stscreds.NewFederationTokenProvider(client, sessionName, func(o *stscreds.FederationTokenOptions) {
			o.Duration, o.Policy, o.PolicyARNs, o.Tags = ttl, role.PolicyDocument, role.PolicyARNs, tags
		}).Mint(ctx)
	}
	if err != nil {
		return stsErrorResponse(req, err)
	}

	left := time.Until(creds.Expires).Truncate(time.Second)
	if left <= 0 {
		return nil, fmt.Errorf("STS returned credentials that already expired at %s", creds.Expires.Format(time.RFC3339))
	}
	resp = b.Secret(secretCredsType).Response(map[string]any{
		"access_key":     creds.AccessKeyID,
		"secret_key":     creds.SecretAccessKey,
		"session_token":  creds.SessionToken,
		"security_token": creds.SessionToken,
		"arn":            creds.ARN,
		"expiration":     creds.Expires.UTC().Format(time.RFC3339),
		"ttl":            int64(left / time.Second),
	}, map[string]any{"role": name, "access_key": creds.AccessKeyID})
	// The lease lives exactly as long as the credentials and cannot be renewed.
	resp.Secret.TTL = left
	resp.Secret.MaxTTL = left
	resp.Secret.Renewable = false
	return resp, nil
}

// defaultSessionName derives a session name from the caller's display name.
func defaultSessionName(displayName, role string, federation bool) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	base := unsafeNameRe.ReplaceAllString(displayName, "-")
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

// keyStoreResponse answers a failure to reach the key: 503 naming the
// store, or the configuration problem.
func keyStoreResponse(req *logical.Request, err error) (*logical.Response, error) {
	if errors.Is(err, errNotConfigured) {
		return logical.ErrorResponse(err.Error()), nil
	}
	var kse *keyStoreError
	if errors.As(err, &kse) {
		return nil, logical.CodedError(http.StatusServiceUnavailable, kse.Error())
	}
	return nil, err
}

// stsErrorResponse answers an STS failure with AWS's code and message: a
// refusal (4xx) as 400, an STS outage as 502, a key-store failure as 503.
func stsErrorResponse(req *logical.Request, err error) (*logical.Response, error) {
	var kse *keyStoreError
	if errors.As(err, &kse) {
		return keyStoreResponse(req, err)
	}
	var stsErr *stscreds.Error
	if errors.As(err, &stsErr) && stsErr.Code != "" {
		msg := fmt.Sprintf("STS %s refused: %s: %s", stsErr.Operation, stsErr.Code, stsErr.Message)
		if stsErr.StatusCode >= 500 {
			return nil, logical.CodedError(http.StatusBadGateway, msg)
		}
		return logical.ErrorResponse("%s", msg), nil
	}
	return nil, logical.CodedError(http.StatusBadGateway, "STS could not be reached: "+err.Error())
}

const pathCredsHelpSyn = `Mint STS credentials for a role, with a Vault lease.`

const pathCredsHelpDesc = `
Reading creds/<role> (or sts/<role>) calls the role's STS operation, signed
with the configured key, and returns access_key, secret_key, session_token (and
security_token, the same value), arn, expiration and ttl. The lease lasts as
long as the credentials and is not renewable; read again for new ones.
Revoking the lease does not revoke the credentials: STS credentials cannot be
revoked, they expire.

Writing accepts role_arn (one of the role's role_arns), role_session_name, ttl
(up to the role's max_sts_ttl) and mfa_code.
`
