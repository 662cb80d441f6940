package scope

import (
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/awsmodel"
)

// candidate is one reading of the request: an operation, by one protocol.
type candidate struct {
	model string
	rest  *awsmodel.Operation // when read by its HTTP route
}

// place finds the operation. Every protocol the service speaks reads the
// request its own way; they must agree on one operation, and nothing the
// service would read may be out of sight. A request the scope cannot place
// leaves d.Operation empty and says why in d.unplaced.
func place(d *Decision, r *Request, models []*awsmodel.Service, sig signals, rr awsmodel.RouteRequest) error {
	if err := sig.refuse(models); err != nil {
		return err
	}
	found := map[string]candidate{}
	d.unplaced = sig.readOps(r.Service, models, found)
	for _, s := range models {
		if !s.REST() {
			continue
		}
		op, ambiguous := s.Route(rr)
		switch {
		case ambiguous:
			d.unplaced = "action: the request's route matches more than one operation"
		case op != nil:
			found[op.Name] = candidate{model: s.Model, rest: op}
		}
	}
	if r.Service == "neptune-db" && len(found) == 0 && d.unplaced == "" {
		// A connection no data API route names: IAM calls it connect.
		found["connect"] = candidate{}
	}
	switch {
	case len(found) > 1:
		d.unplaced = "action: the request reads as more than one operation"
	case len(found) == 1 && d.unplaced == "":
		for name, c := range found {
			d.Operation, d.Model = name, c.model
			if c.rest != nil {
				d.unplaced = unreadQuery(c.rest, rr)
			}
		}
		if d.unplaced != "" {
			d.Operation = ""
		}
	}
	return nil
}

// refuse answers requests that name operations in contradictory ways,
// whatever the role allows.
func (sig signals) refuse(models []*awsmodel.Service) error {
	switch {
	case sig.otherCase:
		return denied("action: an Action parameter in another case is ambiguous")
	case len(sig.actions)+len(sig.targets) > 1:
		return denied("action: the request names more than one API action")
	case len(sig.actions) == 1 && sig.actions[0] == "":
		return denied("action: the request names an empty API action")
	case len(sig.targets) == 1 && !speaks(models, awsmodel.JSON):
		return denied("action: X-Amz-Target names an operation, but this service reads its operation elsewhere (the Action parameter or the HTTP route)")
	case sig.otherProtocol:
		return denied("headers: X-Amzn-Target and Smithy-Protocol select protocols the scope does not read")
	}
	return nil
}

// readOps adds the operations the JSON and Query protocols read, and says
// why the operation cannot be placed when part of it is out of sight.
func (sig signals) readOps(service string, models []*awsmodel.Service, found map[string]candidate) string {
	query := speaks(models, awsmodel.Query) || speaks(models, awsmodel.EC2)
	if len(sig.targets) == 1 {
		prefix, name := cutLast(sig.targets[0], ".")
		for _, s := range models {
			if s.Speaks(awsmodel.JSON) && s.TargetPrefix == prefix && s.Operation(name) != nil {
				found[name] = candidate{model: s.Model}
			}
		}
		if len(found) == 0 {
			return "action: X-Amz-Target names no operation of this service"
		}
		if !sig.root {
			return "url: a JSON-protocol request goes to /; another path could select another protocol's operation"
		}
		if query && !sig.jsonType {
			return "headers: this service reads the Query protocol too; Content-Type must be application/x-amz-json-1.0 so that it reads X-Amz-Target"
		}
		return ""
	}
	if len(sig.actions) == 1 {
		readQueryAction(service, sig.actions[0], models, found)
	}
	switch {
	case !query:
	case !sig.root && service != "sqs":
		return "url: a Query-protocol request goes to /; another path could select another protocol's operation"
	case query && sig.hidden:
		return "action: the request's API action cannot be determined: the body is hidden behind payload_hash; give the body itself, so that its Action is seen"
	case query && sig.formErr:
		return "body: the body is not a valid form, so the Action it may carry cannot be read"
	case (sig.body || speaks(models, awsmodel.JSON)) && !sig.formType:
		return "headers: a Query-protocol request must be signed with Content-Type application/x-www-form-urlencoded, or the service could read it as another protocol"
	case len(sig.actions) == 1 && len(found) == 0 && query:
		return "action: the Action names no operation of this service"
	}
	return ""
}

// readQueryAction reads Action as the Query protocol does, and as the
// IAM-auth token presigns no model describes do.
func readQueryAction(service, action string, models []*awsmodel.Service, found map[string]candidate) {
	for _, s := range models {
		if s.Speaks(awsmodel.Query) || s.Speaks(awsmodel.EC2) {
			if op := s.OperationFold(action); op != nil {
				found[op.Name] = candidate{model: s.Model}
			}
		}
	}
	for _, op := range tokenOps[service] {
		if strings.EqualFold(op, action) {
			_, name := cutLast(op, ":")
			found[name] = candidate{}
		}
	}
}

// unreadQuery: a REST service would read a query key its operation does not
// (a subresource the models do not know yet) as something else.
func unreadQuery(op *awsmodel.Operation, rr awsmodel.RouteRequest) string {
	for k, vs := range rr.Query {
		if k == "x-id" {
			if len(vs) != 1 || vs[0] != op.Name {
				return "url: x-id names another operation than the request's route"
			}
			continue
		}
		if !op.ReadsQuery(k) {
			return "url: the query has a parameter that " + op.Name + " does not read, so the operation cannot be placed"
		}
	}
	return ""
}

func speaks(models []*awsmodel.Service, p awsmodel.Protocol) bool {
	for _, s := range models {
		if s.Speaks(p) {
			return true
		}
	}
	return false
}

func cutLast(s, sep string) (string, string) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+len(sep):]
}
