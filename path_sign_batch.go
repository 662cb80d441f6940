package awshmac

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

var batchInputField = &framework.FieldSchema{
	Type: framework.TypeSlice,
	Description: "Many requests in one call: a list of objects, each with a single call's fields (method, url, headers, " +
		"body or payload_hash, service, region, presign, expires), judged and signed as that call alone would be. " +
		"Answered in batch_results, in the same order. At most 1000 items and 16 MiB in all.",
}

var batchResultsField = &framework.FieldSchema{
	Type: framework.TypeSlice,
	Description: "With batch_input: one object per item, in order, with status (200, or the HTTP status the item " +
		"alone would have had) and either the single call's fields (url, headers, signed_headers, expiration) or error, the reason.",
}

// signBatch is one call with batch_input: every item is screened, parsed,
// authorised and signed by the single call's code, and answered alone —
// one bad item fails only itself.
type signBatch struct {
	b       *backend
	req     *logical.Request
	name    string
	role    *roleEntry
	cfg     *pluginConfig
	fields  map[string]*framework.FieldSchema
	results []map[string]any
}

func (b *backend) pathSignBatch(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	items, fields, err := batchItems(d)
	if err != nil {
		return b.respond(nil, err)
	}
	name := d.Get("name").(string)
	role, cfg, err := b.signRole(ctx, req.Storage, name)
	if err != nil {
		return b.respond(nil, err)
	}
	batch := &signBatch{b: b, req: req, name: name, role: role, cfg: cfg, fields: fields, results: make([]map[string]any, len(items))}
	ins := make([]*signRequest, len(items))
	for i, item := range items {
		in, err := batch.authorise(item)
		if err != nil {
			batch.results[i] = batch.result(nil, err)
			continue
		}
		ins[i] = in
	}
	batch.signAll(ctx, ins)
	return b.respond(&logical.Response{Data: map[string]any{"batch_results": batch.results}}, nil)
}

// batchItems reads batch_input, already bounded by the screen, and the
// fields an item may carry: a single call's, less the role's name and
// batch_input itself.
func batchItems(d *framework.FieldData) ([]any, map[string]*framework.FieldSchema, error) {
	fields := maps.Clone(d.Schema)
	delete(fields, "name")
	delete(fields, "batch_input")
	for name := range d.Raw {
		if _, single := fields[name]; single {
			return nil, nil, badInput("batch_input: give batch_input or a single request's fields such as %s, not both", name)
		}
	}
	items, _ := d.Get("batch_input").([]any)
	if len(items) == 0 {
		return nil, nil, badInput("batch_input: give at least one item")
	}
	return items, fields, nil
}

// authorise is one item up to its signature: screened as a single call is
// screened, then parsed and authorised by the single call's code.
func (bt *signBatch) authorise(raw any) (*signRequest, error) {
	item, ok := raw.(map[string]any)
	if !ok {
		return nil, badInput("batch_input: an item is not an object of a request's fields")
	}
	if err := screenItem(item, bt.fields); err != nil {
		return nil, err
	}
	in, err := parseSignRequest(&framework.FieldData{Raw: item, Schema: bt.fields}, bt.cfg.Region)
	if err != nil {
		return nil, err
	}
	return in, in.authorise(bt.role)
}

// signAll signs the authorised items with one engine and one signing key.
// Once the store or the role's session has failed, the items left get
// that answer without asking again, as each would alone at that moment.
func (bt *signBatch) signAll(ctx context.Context, ins []*signRequest) {
	if !slices.ContainsFunc(ins, func(in *signRequest) bool { return in != nil }) {
		return
	}
	err := bt.b.withEngine(ctx, bt.req.Storage, func(e *engine) error {
		s := &signing{e: e, name: bt.name, role: bt.role}
		var failed map[string]any
		for i, in := range ins {
			switch {
			case in == nil:
			case failed != nil:
				bt.results[i] = maps.Clone(failed)
			default:
				bt.results[i] = bt.result(s.sign(ctx, in))
				if s.err != nil {
					failed = bt.results[i]
				}
			}
		}
		return nil
	})
	if err != nil {
		failed := bt.result(nil, err)
		for i, in := range ins {
			if in != nil {
				bt.results[i] = maps.Clone(failed)
			}
		}
	}
}

// result is an item's answer as Vault would have sent it alone: the
// single call's data with status 200, or the status and reason its error
// maps to, by this plugin's error map and then Vault's.
func (bt *signBatch) result(resp *logical.Response, err error) map[string]any {
	resp, err = bt.b.respond(resp, err)
	status, err := logical.RespondErrorCommon(bt.req, resp, err)
	if err == nil && resp != nil {
		resp.Data["status"] = http.StatusOK
		return resp.Data
	}
	if err == nil {
		return map[string]any{"status": http.StatusInternalServerError, "error": "no answer"}
	}
	logical.AdjustErrorStatusCode(&status, err)
	return map[string]any{"status": status, "error": err.Error()}
}

// signing signs for one role with one engine: the key, or the role's STS
// session, is fetched once however many requests it signs. A failure of
// the store or the session is kept, so a batch does not ask again for
// each of its items what has just failed.
type signing struct {
	e       *engine
	name    string
	role    *roleEntry
	key     hmac.Key
	token   string
	fetched bool
	err     error
}

func (s *signing) sign(ctx context.Context, in *signRequest) (*logical.Response, error) {
	if !s.fetched {
		s.key, s.token, s.err = s.e.signingKey(ctx, s.name, s.role)
		s.fetched = true
	}
	if s.err != nil {
		return nil, s.err
	}
	resp, err := s.e.sign(ctx, in, s.key, s.token)
	var store *storeError
	if errors.As(err, &store) || ctx.Err() != nil {
		s.err = err
	}
	return resp, err
}

// signingKey is the configured key, or, for a role with sign_with=session,
// the role's own STS session and its token.
func (e *engine) signingKey(ctx context.Context, name string, role *roleEntry) (hmac.Key, string, error) {
	if role.SignWith != signWithSession {
		return e.key, "", nil
	}
	s, err := e.sessionFor(ctx, name, role)
	if err != nil {
		return nil, "", err
	}
	return s.key, s.token, nil
}
