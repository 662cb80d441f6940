package awshmac

import (
	"context"
	"net/http"
	"os"
	"slices"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
)

func pathConfigTPMNode(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config/tpm-node",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "tpm-node",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathTPMNodeRead,
				Summary:  "tpm_mode=duplicate: which target the node answering is, and whether its blob loads.",
				Responses: map[int][]framework.Response{http.StatusOK: {{
					Description: "OK",
					Fields: map[string]*framework.FieldSchema{
						"answered_by":  {Type: framework.TypeString, Description: "Host name of the Vault node whose plugin answered."},
						"tpm_device":   {Type: framework.TypeString, Description: "The TPM the node reached."},
						"parent_names": {Type: framework.TypeMap, Description: "This node's parent Names by kind, as its enrolment printed them."},
						"target":       {Type: framework.TypeInt, Description: "Index in tpm_targets of this node; -1 when it is not one of them."},
						"blob_loads":   {Type: framework.TypeBool, Description: "Whether this node's blob imports and loads in its TPM now (false for a target added since the last wrap)."},
						"problem":      {Type: framework.TypeString, Description: "Why it does not, when it does not."},
						"targets":      {Type: framework.TypeInt, Description: "How many targets the key is wrapped to."},
					},
				}}},
			},
		},
		HelpSynopsis:    pathConfigTPMNodeHelpSyn,
		HelpDescription: pathConfigTPMNodeHelpDesc,
	}
}

func (b *backend) pathTPMNodeRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return b.respond(nil, err)
	}
	if cfg == nil {
		return b.respond(nil, errNotConfigured)
	}
	p, ok := cfg.store.(*tpmParams)
	if !ok || p.Mode != tpmModeDuplicate {
		return b.respond(nil, badInput("key_store: config/tpm-node reports on key_store=tpm with tpm_mode=duplicate only"))
	}
	if err := p.validate(&b.env); err != nil { // the registration may have changed; notes this node's TPM
		return b.respond(nil, err)
	}
	st := tpm.Probe(ctx, p.config(), cfg.AccessKey)
	host, _ := os.Hostname()
	names, target := map[string]any{}, -1
	for kind, name := range st.Names {
		names[kind] = name
		if i := slices.IndexFunc(p.Targets, func(t tpm.Target) bool { return t.Parent == kind && t.Name == name }); i >= 0 {
			target = i
		}
	}
	data := map[string]any{
		"answered_by": host, "tpm_device": p.device(), "parent_names": names, "target": target,
		"blob_loads": st.Problem == nil, "problem": "", "targets": len(p.Targets),
	}
	if st.Problem != nil {
		data["problem"] = st.Problem.Error()
		b.Logger().Warn("this node's TPM cannot use its blob", "error", st.Problem)
	}
	return b.respond(&logical.Response{Data: data}, nil)
}

const pathConfigTPMNodeHelpSyn = `Which duplication target this node is, and whether its blob loads.`

const pathConfigTPMNodeHelpDesc = `
With key_store=tpm and tpm_mode=duplicate, reading config/tpm-node has the
plugin on the node that answers import and load its own blob in a fresh
session, as it does when it builds its engine, and report: the host name
of that node (answered_by), its parent Names by kind (compare them with
the enrolments), its index in tpm_targets (-1: not enrolled), whether the
blob loads, and why not.

Vault forwards requests that reach a standby node to the active node, so
the node that answers is the active one, wherever the request was sent;
answered_by says which. A standby cannot report on itself through Vault:
to check a standby, run "aws-hmac tpm enroll" on it and compare its Name
with tpm_targets, or read config/tpm-node after it becomes active (a
step-down moves the role). Nothing here is secret; the key never leaves
the TPM to be checked.
`
