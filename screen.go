package awshmac

import (
	"context"
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
// and the framework converts every field for it.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if err := b.screen(req); err != nil {
		return false, false, errutil.UserError{Err: err.Error()}
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// screenedPath is a path's pattern, compiled as the framework compiles it.
type screenedPath struct {
	re     *regexp.Regexp
	fields map[string]*framework.FieldSchema
}

func (b *backend) initScreen() {
	for _, p := range b.Paths {
		b.screened = append(b.screened, screenedPath{re: regexp.MustCompile(p.Pattern), fields: p.Fields})
	}
}

func (b *backend) screen(req *logical.Request) error {
	if req.Operation == logical.HelpOperation || len(req.Data) == 0 {
		return nil
	}
	for _, p := range b.screened {
		if p.re.MatchString(req.Path) {
			if _, signs := p.fields["headers"]; signs {
				if err := headersFromPairs(req.Data); err != nil {
					return err
				}
			}
			return screenFields(req.Data, p.fields, p.re.SubexpNames())
		}
	}
	return nil
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
	if name == "headers" {
		return screenHeaders(v)
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
