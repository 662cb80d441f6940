package awsmodel

import (
	"net/url"
	"strings"
)

// Operation is one operation of a service. For REST services it carries
// the route that selects it.
type Operation struct {
	Name       string
	Method     string // REST only
	URI        string // REST only: the request-URI template, as in the model
	HostPrefix string // a template the host starts with, e.g. {AccountId}.
	Deprecated bool   // superseded; its route yields to a current operation's

	segs            []segment
	litQuery        []queryLiteral // ?uploads, ?list-type=2
	requiredQuery   []string
	requiredHeaders []string // lower case
	queryKeys       map[string]bool
	anyQuery        bool // a map of any query keys
}

type segment struct {
	label          bool
	greedy         bool
	prefix, suffix string // around a label; the whole text for a literal
}

type queryLiteral struct {
	key, value string
	anyValue   bool
}

func parseOperation(f []string) *Operation {
	op := &Operation{Name: f[0]}
	if len(f) < 6 {
		return op
	}
	op.Method, op.URI, op.HostPrefix = f[1], f[2], undash(f[5])
	op.Deprecated = len(f) > 6 && f[6] == "deprecated"
	op.queryKeys = map[string]bool{}
	pathPart, queryPart, _ := strings.Cut(op.URI, "?")
	for _, s := range strings.Split(strings.TrimPrefix(pathPart, "/"), "/") {
		op.segs = append(op.segs, parseSegment(s))
	}
	for _, kv := range strings.Split(queryPart, "&") {
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		op.litQuery = append(op.litQuery, queryLiteral{key: k, value: v, anyValue: !hasValue || strings.Contains(v, "{")})
		op.queryKeys[k] = true
	}
	for _, q := range strings.Split(undash(f[3]), ",") {
		switch {
		case q == "":
		case q == "*":
			op.anyQuery = true
		case strings.HasPrefix(q, "!"):
			op.requiredQuery = append(op.requiredQuery, q[1:])
			op.queryKeys[q[1:]] = true
		default:
			op.queryKeys[q] = true
		}
	}
	if h := undash(f[4]); h != "" {
		op.requiredHeaders = strings.Split(h, ",")
	}
	return op
}

func parseSegment(s string) segment {
	i, j := strings.IndexByte(s, '{'), strings.IndexByte(s, '}')
	if i < 0 || j < i {
		return segment{prefix: s}
	}
	name := s[i+1 : j]
	return segment{label: true, greedy: strings.HasSuffix(name, "+"), prefix: s[:i], suffix: s[j+1:]}
}

// ReadsQuery reports whether the operation reads the query key: one its
// route names or one of its input members.
func (o *Operation) ReadsQuery(key string) bool { return o.anyQuery || o.queryKeys[key] }

// RouteRequest is what a REST service routes on. Segments are the path's
// segments, split on '/' and then percent-decoded, without the leading
// slash's empty segment ("/" is one empty segment).
type RouteRequest struct {
	Method    string
	Segments  []string
	Query     url.Values
	HasHeader func(lowerName string) bool
}

// Route finds the operation the request selects. When two operations match
// equally well, ambiguous is true and op is nil: the caller cannot know
// which one the service runs.
func (s *Service) Route(r RouteRequest) (op *Operation, ambiguous bool) {
	rs := s.byMethod[r.Method]
	if rs == nil {
		return nil, false
	}
	best := -1
	consider := func(ops []*Operation) {
		for _, o := range ops {
			score, ok := o.match(r)
			switch {
			case !ok || score < best:
			case score > best:
				best, op, ambiguous = score, o, false
			case o.Name != op.Name:
				ambiguous = true
			}
		}
	}
	if len(r.Segments) > 0 && r.Segments[0] != "" {
		consider(rs.plain[r.Segments[0]])
	}
	consider(rs.plain[""])
	for k := range r.Query {
		consider(rs.byKey[k])
	}
	if ambiguous {
		return nil, true
	}
	return op, false
}

// match reports whether the request fits the route, and how specifically:
// literal query keys weigh most, then required members present, then
// literal path segments; a deprecated operation yields to a current one on
// the same route (S3's PutBucketLifecycle to PutBucketLifecycleConfiguration:
// the service runs one handler for both).
func (o *Operation) match(r RouteRequest) (int, bool) {
	// Query and headers first: they rule out most routes with map look-ups.
	for _, q := range o.litQuery {
		vs, present := r.Query[q.key]
		if !present || (!q.anyValue && (len(vs) != 1 || vs[0] != q.value)) {
			return 0, false
		}
	}
	for _, k := range o.requiredQuery {
		if _, present := r.Query[k]; !present {
			return 0, false
		}
	}
	for _, h := range o.requiredHeaders {
		if r.HasHeader == nil || !r.HasHeader(h) {
			return 0, false
		}
	}
	literals, ok := matchSegments(o.segs, r.Segments)
	if !ok && o.trailingSlash() {
		// SDKs send a route's trailing slash or not; the service takes both.
		literals, ok = matchSegments(o.segs, append(r.Segments[:len(r.Segments):len(r.Segments)], ""))
	}
	if !ok {
		return 0, false
	}
	current := 1
	if o.Deprecated {
		current = 0
	}
	return len(o.litQuery)<<17 | (len(o.requiredQuery)+len(o.requiredHeaders))<<9 | literals<<1 | current, true
}

// trailingSlash reports a route whose path ends in "/" after a segment.
func (o *Operation) trailingSlash() bool {
	n := len(o.segs)
	return n > 1 && !o.segs[n-1].label && o.segs[n-1].prefix == ""
}

// matchSegments matches a path against a template: a label takes one
// non-empty segment, a greedy label one or more, a literal itself. It
// returns how many literal segments matched.
func matchSegments(tmpl []segment, segs []string) (int, bool) {
	literals, j := 0, 0
	for i, t := range tmpl {
		if t.greedy {
			rest := len(tmpl) - i - 1
			n := len(segs) - j - rest
			if n < 1 || !t.fitsAll(segs[j:j+n]) {
				return 0, false
			}
			j += n
			continue
		}
		if j >= len(segs) || !t.fits(segs[j]) {
			return 0, false
		}
		if !t.label {
			literals++
		}
		j++
	}
	return literals, j == len(segs)
}

func (t segment) fits(s string) bool {
	if !t.label {
		return s == t.prefix
	}
	return len(s) > len(t.prefix)+len(t.suffix) && strings.HasPrefix(s, t.prefix) && strings.HasSuffix(s, t.suffix)
}

// fitsAll is fits for a greedy label over several segments, joined by '/'.
func (t segment) fitsAll(segs []string) bool {
	if t.prefix == "" && t.suffix == "" {
		return len(segs) > 1 || segs[0] != "" // the joined text is not empty
	}
	return t.fits(strings.Join(segs, "/"))
}
