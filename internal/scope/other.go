package scope

import (
	"net/url"
	"slices"
	"strings"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/awsmodel"
)

// checkOther places a request to any service but S3: its path as the
// service reads it, then its operation by the service's protocol.
func (p *Policy) checkOther(r *Request) (Decision, error) {
	d := Decision{Service: r.Service}
	path, segs, err := servicePath(r.URL, len(p.Paths) > 0)
	if err != nil {
		return d, err
	}
	if len(p.Paths) > 0 && !MatchGlobs(p.Paths, path) {
		return d, denied("url: the role may not sign this path (allowed_paths: " + listOrNone(p.Paths) + ")")
	}
	if r.Service == "execute-api" {
		d.Operation = invokeOperation(segs)
		return d, nil
	}
	query, err := r.query()
	if err != nil {
		return d, err
	}
	sig, err := readSignals(r, query)
	if err != nil {
		return d, err
	}
	sig.root = len(segs) == 1 && segs[0] == ""
	if r.Presign && len(sig.targets) > 0 {
		return d, denied("presign: a presigned URL would carry X-Amz-Target in its query, where the service does not read it; sign the request with headers")
	}
	models := pickModels(r.Service, r.URL.Hostname())
	d.modelled = len(models) > 0
	if err := place(&d, r, models, sig, awsmodel.RouteRequest{Method: r.Method, Segments: segs, Query: query, HasHeader: hasHeader(r)}); err != nil {
		return d, err
	}
	if encodes(r.Header.Values("Content-Encoding")) && d.Operation != "" {
		// A service that decompresses reads another body than the one
		// the scope read (AWS's request compression: gzip).
		d.Operation, d.unplaced = "", "headers: Content-Encoding makes the service read another body than the one signed here"
	}
	return d, nil
}

// encodes reports whether any Content-Encoding value is other than
// identity: each value counts, not only the first, since the service reads
// them all.
func encodes(values []string) bool {
	return slices.ContainsFunc(values, func(v string) bool { return v != "" && !strings.EqualFold(v, "identity") })
}

// anySet reports whether any of a header's values is not empty.
func anySet(values []string) bool {
	return slices.ContainsFunc(values, func(v string) bool { return v != "" })
}

// invokeOperation: API Gateway runs the caller's own API; IAM names every
// call execute-api:Invoke, and a WebSocket API's connection management
// execute-api:ManageConnections.
func invokeOperation(segs []string) string {
	for _, s := range segs {
		if s == "@connections" {
			return "ManageConnections"
		}
	}
	return "Invoke"
}

// pickModels narrows the models of a signing name to those whose endpoint
// prefix the host carries, the longest first; a host that names none (a
// local endpoint) keeps them all.
func pickModels(service, hostname string) []*awsmodel.Service {
	all := awsmodel.Services(service)
	if len(all) < 2 {
		return all
	}
	host := "." + strings.ToLower(hostname) + "."
	best, out := 0, []*awsmodel.Service(nil)
	for _, s := range all {
		n := len(s.EndpointPrefix)
		// The prefix as whole labels, or with a suffix such as -fips.
		named := strings.Contains(host, "."+s.EndpointPrefix+".") || strings.Contains(host, "."+s.EndpointPrefix+"-fips.")
		if !named || n < best {
			continue
		}
		if n > best {
			best, out = n, nil
		}
		out = append(out, s)
	}
	if out == nil {
		return all
	}
	return out
}

func hasHeader(r *Request) func(string) bool {
	return func(name string) bool { return len(r.Header.Values(name)) > 0 }
}

// signals are the parts of a request that name an operation to one
// protocol or another.
type signals struct {
	actions   []string // Action in the query and in a form body
	targets   []string // X-Amz-Target
	formErr   bool     // a body that is not a valid form
	hidden    bool     // a body only its hash stands for
	body      bool     // a body in sight
	jsonType  bool     // Content-Type is application/x-amz-json-*
	otherCase bool     // an Action parameter spelt in another case
	formType  bool     // Content-Type is application/x-www-form-urlencoded
	// otherProtocol: X-Amzn-Target or Smithy-Protocol, which newer
	// protocols (RPC v2 CBOR) read instead of the ones the scope reads.
	otherProtocol bool
	root          bool // the path is "/"
}

// readSignals reads every place an operation could be named. A body is
// read as a form whatever its Content-Type: a service might take it as one.
func readSignals(r *Request, query url.Values) (signals, error) {
	var s signals
	collect := func(values url.Values) {
		for k, vs := range values {
			// A key that reads as Action once trimmed (spaces, a byte-order
			// mark) might be taken as one.
			if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(k, "\ufeff")), "action") {
				s.otherCase = s.otherCase || k != "Action"
				s.actions = append(s.actions, vs...)
			}
		}
	}
	collect(query)
	if len(r.Header.Values("Content-Type")) > 1 {
		// The scope would read the first; the service might read another.
		return s, bad("headers: more than one Content-Type")
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if len(r.Body) > 0 {
		form, err := url.ParseQuery(string(r.Body))
		if err != nil && strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			return s, bad("body: the form is malformed")
		}
		s.formErr = err != nil
		collect(form)
	}
	s.hidden = r.Body == nil && hasPayload(r.PayloadHash)
	s.body = len(r.Body) > 0
	s.targets = r.Header.Values("X-Amz-Target")
	s.jsonType = strings.HasPrefix(ct, "application/x-amz-json-")
	s.formType = strings.HasPrefix(ct, "application/x-www-form-urlencoded")
	s.otherProtocol = anySet(r.Header.Values("X-Amzn-Target")) || anySet(r.Header.Values("Smithy-Protocol"))
	return s, nil
}

// hasPayload reports whether a payload hash stands for a body that is not
// empty (or not known to be).
func hasPayload(hash string) bool {
	return hash != "" && hash != emptySHA256
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
