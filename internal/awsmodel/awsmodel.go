// Package awsmodel is a compact table of AWS's service models: for every
// signing name, the protocol each service speaks, its JSON target prefix,
// and each operation's HTTP route. The signing scope reads from it which
// operation a request's bytes select, as the service itself would.
//
// The table (models.txt) is generated from AWS's published models by
// ./gen; see Source for the version.
package awsmodel

import (
	_ "embed"
	"strings"
	"sync"
)

//go:generate go run ./gen -out models.txt

//go:embed models.txt
var table string

// Protocol is how a service reads the operation from a request.
type Protocol string

// The protocols AWS's models name.
const (
	Query    Protocol = "query"     // Action in the query or form body
	EC2      Protocol = "ec2"       // the same, EC2's dialect
	JSON     Protocol = "json"      // X-Amz-Target: <prefix>.<operation>
	RESTJSON Protocol = "rest-json" // method, path and query
	RESTXML  Protocol = "rest-xml"  // method, path and query
)

// REST reports whether the operation is chosen by its HTTP route.
func (p Protocol) REST() bool { return p == RESTJSON || p == RESTXML }

// Service is one service model.
type Service struct {
	Model          string // the model's name, e.g. s3control
	SigningName    string // the SigV4 service name
	EndpointPrefix string // the first labels of its host, e.g. s3-control
	Protocols      []Protocol
	TargetPrefix   string // JSON: X-Amz-Target is TargetPrefix + "." + operation

	ops      map[string]*Operation
	opsFold  map[string]*Operation
	byMethod map[string]*routes
}

// routes are one method's operations: those whose route names no query
// key, and the others by the first key they name (?uploads, ?policy), so
// that a request looks only at the routes its own query keys can select.
type routes struct {
	plain map[string][]*Operation // by their first path segment, "" when a label
	byKey map[string][]*Operation
}

// Speaks reports whether the service reads requests in protocol p.
func (s *Service) Speaks(p Protocol) bool {
	for _, q := range s.Protocols {
		if q == p {
			return true
		}
	}
	return false
}

// REST reports whether the service chooses operations by HTTP route.
func (s *Service) REST() bool { return len(s.Protocols) > 0 && s.Protocols[0].REST() }

// Operation is the operation of that exact name, or nil.
func (s *Service) Operation(name string) *Operation { return s.ops[name] }

// OperationFold is the operation whose name equals name in any case, or nil.
func (s *Service) OperationFold(name string) *Operation { return s.opsFold[strings.ToLower(name)] }

// Operations lists the service's operation names.
func (s *Service) Operations() []string {
	out := make([]string, 0, len(s.ops))
	for n := range s.ops {
		out = append(out, n)
	}
	return out
}

var (
	loadOnce  sync.Once
	bySigning map[string][]*Service
	source    string
)

func load() {
	bySigning = map[string][]*Service{}
	var cur *Service
	for line := range strings.Lines(table) {
		line = strings.TrimSuffix(line, "\n")
		f := strings.Split(line, "\t")
		switch f[0] {
		case "S":
			cur = &Service{Model: f[1], SigningName: f[2], EndpointPrefix: f[3], TargetPrefix: undash(f[5]),
				ops: map[string]*Operation{}, opsFold: map[string]*Operation{}, byMethod: map[string]*routes{}}
			for _, p := range strings.Split(f[4], ",") {
				cur.Protocols = append(cur.Protocols, Protocol(p))
			}
			bySigning[cur.SigningName] = append(bySigning[cur.SigningName], cur)
		case "O":
			cur.add(parseOperation(f[1:]))
		default:
			if s, ok := strings.CutPrefix(line, "# source: "); ok {
				source = s
			}
		}
	}
}

func (s *Service) add(op *Operation) {
	s.ops[op.Name] = op
	s.opsFold[strings.ToLower(op.Name)] = op
	if op.Method == "" {
		return
	}
	rs := s.byMethod[op.Method]
	if rs == nil {
		rs = &routes{plain: map[string][]*Operation{}, byKey: map[string][]*Operation{}}
		s.byMethod[op.Method] = rs
	}
	if len(op.litQuery) == 0 {
		first := ""
		if len(op.segs) > 0 && !op.segs[0].label {
			first = op.segs[0].prefix
		}
		rs.plain[first] = append(rs.plain[first], op)
	} else {
		rs.byKey[op.litQuery[0].key] = append(rs.byKey[op.litQuery[0].key], op)
	}
}

// Services are the models whose signing name is name; most names have one.
func Services(signingName string) []*Service {
	loadOnce.Do(load)
	return bySigning[signingName]
}

// SigningNames lists every signing name in the table.
func SigningNames() []string {
	loadOnce.Do(load)
	out := make([]string, 0, len(bySigning))
	for n := range bySigning {
		out = append(out, n)
	}
	return out
}

// Source names the models the table was generated from.
func Source() string {
	loadOnce.Do(load)
	return source
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}
