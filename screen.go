package awshmac

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// Limits on what one request may carry. Each refusal names its limit.
const (
	maxHeaderNames  = 64
	maxHeaderValue  = 8 << 10
	maxHeadersTotal = 64 << 10
	maxURLLength    = 8 << 10
	maxFieldLength  = 16 << 10 // any other string field
	maxListItems    = 64       // any list or map field, unless fieldLimits says less
	maxBatchItems   = 1000     // sign/'s batch_input; each item has a single call's limits
	maxBatchBytes   = 16 << 20 // every name and value in batch_input together
)

// fieldLimits are the fields whose raw length differs from maxFieldLength.
var fieldLimits = map[string]int{
	"url":         maxURLLength,
	"body":        (maxSignBody + 2) / 3 * 4, // base64 of the largest body
	"tink_keyset": 64 << 10,
}

// HandleRequest screens the raw request before the framework converts it:
// the framework's own conversion errors quote the value they could not
// convert, which for a write-only field is a secret, and a huge field
// would cost work before any handler could refuse it.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if err := b.screen(req); err != nil {
		return b.respond(nil, err)
	}
	return b.Backend.HandleRequest(ctx, req)
}

// HandleExistenceCheck screens too: Vault asks it first on every write,
// and for a path with an existence check the framework converts every
// field. A path without one (sign/) is answered at once: its request is
// screened when it comes, and Vault asks on every write.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if p := b.screenedFor(req.Path); p != nil && !p.existenceCheck {
		return false, false, nil
	}
	if err := b.screen(req); err != nil {
		return false, false, errutil.UserError{Err: err.Error()}
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// screenedPath is a path's pattern, compiled as the framework compiles it.
type screenedPath struct {
	re             *regexp.Regexp
	prefix         string // the pattern's literal start, to skip the others without running them
	fields         map[string]*framework.FieldSchema
	existenceCheck bool
}

// initScreen anchors each pattern as the framework does when it routes:
// unanchored, "config" would screen sign/myconfig with config's fields.
func (b *backend) initScreen() {
	for _, p := range b.Paths {
		pattern := strings.TrimSuffix(strings.TrimPrefix(p.Pattern, "^"), "$") + "$"
		prefix, _ := regexp.MustCompile(pattern).LiteralPrefix()
		b.screened = append(b.screened, screenedPath{re: regexp.MustCompile("^" + pattern), prefix: prefix,
			fields: p.Fields, existenceCheck: p.ExistenceCheck != nil})
	}
}

// screenedFor is the path req.Path names, as the framework routes it; nil
// when none does.
func (b *backend) screenedFor(path string) *screenedPath {
	for i := range b.screened {
		if p := &b.screened[i]; strings.HasPrefix(path, p.prefix) && p.re.MatchString(path) {
			return p
		}
	}
	return nil
}

func (b *backend) screen(req *logical.Request) error {
	if req.Operation == logical.HelpOperation || len(req.Data) == 0 {
		return nil
	}
	p := b.screenedFor(req.Path)
	if p == nil {
		return nil
	}
	if req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation {
		if err := refuseUnknownFields(req.Data, p.fields); err != nil {
			return err
		}
	}
	if _, signs := p.fields["headers"]; signs {
		if err := headersFromPairs(req.Data); err != nil {
			return err
		}
	}
	return screenFields(req.Data, p.fields, p.re.SubexpNames())
}

// fieldNameRe is what a field name of ours looks like: only such a name is
// quoted back, so a caller cannot make an error repeat what it chose.
var fieldNameRe = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// refuseUnknownFields: a write naming a field the path does not have is a
// 400 naming it, not a silent success — allowed_host= or default_ttl= would
// otherwise leave a role signing nothing or minting for an hour. A warning
// (Vault's default) scrolls past in scripts; a refusal changes nothing.
func refuseUnknownFields(data map[string]any, fields map[string]*framework.FieldSchema) error {
	var unknown []string
	for name := range data {
		if _, ok := fields[name]; ok {
			continue
		}
		if !fieldNameRe.MatchString(name) {
			return badInput("a field name is not one of this path's fields (the name sent is not shown)")
		}
		unknown = append(unknown, name)
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return badInput("%s: no such field on this path; see `vault path-help` for its fields", strings.Join(unknown, ", "))
}

// screenItem screens one of batch_input's items as a single call is
// screened, against the fields an item may carry: a misspelt field is
// refused, as on a single call.
func screenItem(item map[string]any, fields map[string]*framework.FieldSchema) error {
	if err := refuseUnknownFields(item, fields); err != nil {
		return err
	}
	if err := headersFromPairs(item); err != nil {
		return err
	}
	return screenFields(item, fields, nil)
}

// headersFromPairs turns sign/'s headers given as Name=value strings — as
// the vault CLI sends `headers=Content-Type=text/plain`, a list when the
// name repeats — into the map the field holds.
func headersFromPairs(data map[string]any) error {
	var pairs []any
	switch v := data["headers"].(type) {
	case string:
		if strings.HasPrefix(strings.TrimSpace(v), "{") {
			return nil // a JSON object, as the API takes it
		}
		pairs = []any{v}
	case []any:
		pairs = v
	default:
		return nil
	}
	if len(pairs) > maxHeaderNames*maxListItems {
		return badInput("headers: more than %d values", maxHeaderNames*maxListItems)
	}
	m := map[string]any{}
	for _, p := range pairs {
		s, ok := p.(string)
		name, value, found := strings.Cut(s, "=")
		if !ok || !found {
			return badInput("headers: give a map, or Name=value strings")
		}
		if prev, ok := m[name].([]any); ok {
			m[name] = append(prev, value)
		} else {
			m[name] = []any{value}
		}
	}
	data["headers"] = m
	return nil
}

// screenFields checks sizes first, so the work is bounded, then types.
func screenFields(data map[string]any, fields map[string]*framework.FieldSchema, captured []string) error {
	names := make([]string, 0, len(data))
	for name := range data {
		if _, known := fields[name]; known && !slices.Contains(captured, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if err := screenSize(name, data[name]); err != nil {
			return err
		}
	}
	for _, name := range names {
		if err := screenType(name, data[name], fields[name]); err != nil {
			return err
		}
	}
	return nil
}

func screenSize(name string, v any) error {
	switch name {
	case "headers":
		return screenHeaders(v)
	case "batch_input":
		return screenBatch(v)
	}
	limit := maxFieldLength
	if l, ok := fieldLimits[name]; ok {
		limit = l
	}
	switch t := v.(type) {
	case string:
		if len(t) > limit {
			return badInput("%s is longer than %d bytes", name, limit)
		}
	case []any:
		if len(t) > maxListItems {
			return badInput("%s has more than %d items", name, maxListItems)
		}
		for _, e := range t {
			if s, ok := e.(string); ok && len(s) > limit {
				return badInput("%s has an item longer than %d bytes", name, limit)
			}
		}
	case map[string]any:
		if len(t) > maxListItems {
			return badInput("%s has more than %d entries", name, maxListItems)
		}
	}
	return nil
}

// screenHeaders bounds sign/'s headers: names, each value, and the total.
func screenHeaders(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return nil // the type check names the field
	}
	if len(m) > maxHeaderNames {
		return badInput("headers: more than %d header names", maxHeaderNames)
	}
	total := 0
	for k, hv := range m {
		total += len(k)
		values, _ := hv.([]any)
		if s, ok := hv.(string); ok {
			values = []any{s}
		}
		if len(values) > maxListItems {
			return badInput("headers: more than %d values for one header", maxListItems)
		}
		for _, e := range values {
			s, _ := e.(string)
			if len(s) > maxHeaderValue {
				return badInput("headers: a value is longer than %d bytes", maxHeaderValue)
			}
			total += len(s)
		}
		if total > maxHeadersTotal {
			return badInput("headers: more than %d bytes in all", maxHeadersTotal)
		}
	}
	return nil
}

// screenBatch bounds batch_input as a whole: the number of items and the
// bytes of all their names and values. Each item is screened on its own
// when the batch is answered, so one bad item fails only itself.
func screenBatch(v any) error {
	items, ok := v.([]any)
	if !ok {
		return badInput("batch_input must be a list of objects, each a request's fields")
	}
	if len(items) > maxBatchItems {
		return badInput("batch_input: more than %d items", maxBatchItems)
	}
	if batchBytes(items, maxBatchBytes) > maxBatchBytes {
		return badInput("batch_input: more than %d bytes in all", maxBatchBytes)
	}
	return nil
}

// batchBytes counts every name and value in items, stopping once past
// limit; a walk with its own stack, however deep the JSON nests.
func batchBytes(items []any, limit int) int {
	total := 0
	stack := append([]any(nil), items...)
	for len(stack) > 0 && total <= limit {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch t := v.(type) {
		case string:
			total += len(t)
		case json.Number:
			total += len(t)
		case map[string]any:
			for k, e := range t {
				total += len(k)
				stack = append(stack, e)
			}
		case []any:
			stack = append(stack, t...)
		default:
			total += 8 // a number, a boolean or null
		}
	}
	return total
}

// screenType converts the field as the framework will, reporting a failure
// by the field's name and expected type, never its value. Write-only
// fields must be strings: anything else is refused unconverted.
func screenType(name string, v any, schema *framework.FieldSchema) error {
	if slices.Contains(writeOnlyFields(), name) {
		if _, ok := v.(string); !ok {
			return badInput("%s must be a string (the value sent is not shown)", name)
		}
		return nil
	}
	if _, ok := v.(string); ok && schema.Type == framework.TypeString {
		return nil // nothing to convert
	}
	fd := framework.FieldData{Raw: map[string]any{name: v}, Schema: map[string]*framework.FieldSchema{name: schema}}
	if _, _, err := fd.GetOkErr(name); err != nil {
		return badInput("%s must be a %s", name, typeName(schema.Type))
	}
	return nil
}

func typeName(t framework.FieldType) string {
	switch t {
	case framework.TypeBool:
		return "boolean"
	case framework.TypeInt, framework.TypeInt64:
		return "whole number"
	case framework.TypeDurationSecond, framework.TypeSignedDurationSecond:
		return "duration (seconds, or a string such as 15m)"
	case framework.TypeMap:
		return "map of names to values"
	case framework.TypeKVPairs:
		return "list of key=value pairs"
	case framework.TypeCommaStringSlice, framework.TypeStringSlice:
		return "list of strings, or a comma-separated string"
	case framework.TypeCommaIntSlice:
		return "list of whole numbers, or a comma-separated string"
	}
	return t.String()
}
