package awshmac

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// pathRoleRevokeSessions is the kill switch: every session of the role's
// target IAM roles that this mount minted with deny_session before now is
// denied in AWS, whichever of the mount's Vault roles minted it (the
// condition is the mount's session tag and the issue time).
func pathRoleRevokeSessions(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "roles/" + framework.GenericNameRegex("name") + "/revoke-sessions$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "role-sessions",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the role, exactly as written.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRoleRevokeSessions,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Deny every deny_session session this mount minted on the role's target IAM roles until now.",
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "revoke"},
				Responses: map[int][]framework.Response{http.StatusOK: {{
					Description: "OK",
					Fields: map[string]*framework.FieldSchema{
						"denied_before": {Type: framework.TypeString, Description: "Sessions issued before this time (RFC 3339) are denied."},
						"role_arns":     {Type: framework.TypeStringSlice, Description: "The target roles whose policy now denies them."},
					},
				}}},
			},
		},
		HelpSynopsis:    pathRoleRevokeSessionsHelpSyn,
		HelpDescription: pathRoleRevokeSessionsHelpDesc,
	}
}

func (b *backend) pathRoleRevokeSessions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role, err := b.existingRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil {
		return b.respond(nil, err)
	}
	if role.RevokeMode != revokeModeDenySession {
		return b.respond(nil, badInput("revoke_mode: the role's sessions can be revoked only with revoke_mode deny_session, which tags them"))
	}
	// TokenIssueTime has whole seconds: the next second covers every
	// session issued until now (and any issued in the rest of this second).
	before := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	until := before.Add(stsTTLLimits[credentialAssumedRole].max) // the longest any session may live
	arns := role.sessionRoleARNs()
	for _, arn := range arns {
		err := b.updateRevocation(ctx, req.Storage, arn, func(rec *revocationRecord) {
			if before.After(rec.DeniedBefore) {
				rec.DeniedBefore = before
			}
			if until.After(rec.DeniedUntil) {
				rec.DeniedUntil = until
			}
		})
		if err != nil {
			return b.respond(nil, err)
		}
	}
	return b.respond(&logical.Response{Data: map[string]any{
		"denied_before": before.Format(time.RFC3339),
		"role_arns":     arns,
	}}, nil)
}

const pathRoleRevokeSessionsHelpSyn = `Deny every session of the role's target IAM roles that this mount minted with revoke_mode=deny_session before now.`

const pathRoleRevokeSessionsHelpDesc = `
For an incident: writing roles/<name>/revoke-sessions on a role with
revoke_mode deny_session adds to the deny policy of each of its target IAM
roles a statement that denies every session of that IAM role that this mount
minted with revoke_mode=deny_session before now, whichever of the mount's
Vault roles minted it: they all carry the mount's vault-aws-hmac-mount
session tag, and the statement matches that tag and an aws:TokenIssueTime
before denied_before. Sessions minted afterwards, sessions this mount minted
while a role had revoke_mode none (they carry no tag), and sessions minted by
anyone else are untouched.

The statement takes the place of the per-session entries of the sessions it
covers, so it fits IAM's inline policy quota even when revoked leases have
filled it. It is removed 12 hours later, when the last session it covers has
expired.
`
