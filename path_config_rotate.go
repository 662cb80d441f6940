package awshmac

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathConfigRotateRoot(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config/rotate-root",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "rotate",
			OperationSuffix: "root-key",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRotateRoot,
				Summary:                     "Rotate the AWS access key inside the key store.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses: map[int][]framework.Response{http.StatusOK: {{
					Description: "OK",
					Fields: map[string]*framework.FieldSchema{
						"access_key":          {Type: framework.TypeString, Description: "The new access key ID."},
						"previous_access_key": {Type: framework.TypeString, Description: "The access key ID rotated away from, now deleted."},
					},
				}}},
			},
		},
		HelpSynopsis:    pathRotateRootHelpSyn,
		HelpDescription: pathRotateRootHelpDesc,
	}
}

func (b *backend) pathRotateRoot(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.configLock.Lock()
	defer b.configLock.Unlock()
	return b.respond(b.rotateRoot(ctx, req.Storage))
}

// periodic rotation: on the active node only, when the schedule says so.
func (b *backend) rotateIfDue(ctx context.Context, s logical.Storage) {
	if !b.WriteSafeReplicationState() {
		return
	}
	b.configLock.Lock()
	defer b.configLock.Unlock()
	cfg, err := b.config(ctx, s)
	if err != nil || cfg == nil {
		return
	}
	next := cfg.nextRotation()
	if next.IsZero() || time.Now().Before(next) {
		return
	}
	if resp, err := b.rotateRoot(ctx, s); err != nil {
		b.Logger().Warn("scheduled rotation failed; it will be tried again", "error", err)
	} else {
		b.Logger().Info("scheduled rotation done", "access_key", resp.Data["access_key"], "previous_access_key", resp.Data["previous_access_key"])
	}
}

const pathRotateRootHelpSyn = `Rotate the AWS access key without any person seeing the new secret.`

const pathRotateRootHelpDesc = `
Rotation asks IAM, through the key store, for a new access key of the same
user (CreateAccessKey), imports its secret straight into the same store as a
new object, proves it with GetCallerIdentity through the store (retrying up to
rotation_verify_timeout while IAM propagates it), switches the config to it,
and deletes the old key from IAM and, unless old_store_object=keep, from the
store. Only the access key IDs are returned; the new secret never reaches
storage, a log, an error or a response. A crash at any step is finished or
undone by the write-ahead log, which deletes only keys it can prove the
rotation made (by user and creation time, against the same sts/iam
endpoints, none the user had before) and warns of any other.

With the transit store, the new secret is wrapped only for the wrapping key
recorded at the first import (transit_wrapping_key_fingerprint); another
one stops the rotation before IAM makes a key. The config stays writable
during old_key_grace; a write that points it away from the new key keeps
both keys, with a warning.

The user needs iam:CreateAccessKey, iam:DeleteAccessKey and
iam:ListAccessKeys on itself, and must not hold a second key the plugin did
not create (IAM allows two). Presigned URLs signed with the old key stop
working once it is deleted.
`
