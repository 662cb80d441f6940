// Package scope decides whether a role may sign an AWS request, from the
// operation the receiving service will run: read the way the service's own
// protocol reads it (AWS's service models, internal/awsmodel), never from a
// hint the caller adds. What it cannot place is refused whenever it
// matters. It knows nothing of Vault.
package scope

import (
	"net/http"
	"net/url"
	"time"
)

// Policy is a role's signing scope. Empty Services, Regions or Hosts allow
// nothing; empty Methods, Paths or Actions add no limit beyond the others.
type Policy struct {
	Services          []string      // signing names, * for any modelled service
	Regions           []string      // region names or *
	Hosts             []string      // host[:port], *.domain, or *
	Methods           []string      // upper-case HTTP methods
	Paths             []string      // globs on the path as the service reads it (S3: /bucket/key)
	Actions           []string      // service:Operation, with * globs
	Schemes           []string      // https (default), http; loopback hosts may always use http
	MaxPresignExpires time.Duration // 0: 7 days
}

// Request is what would be signed. Body is nil when only PayloadHash
// stands for it.
type Request struct {
	Method      string
	URL         *url.URL
	Query       url.Values // URL.RawQuery already parsed, read only; nil: parsed here
	Header      http.Header
	Body        []byte
	PayloadHash string // hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING- mode
	Service     string // signing name
	Region      string
	Presign     bool
	Expires     time.Duration
}

// query is the URL's query, parsed once: Query when the caller parsed it.
func (r *Request) query() (url.Values, error) {
	if r.Query != nil {
		return r.Query, nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, bad("url: the query string is malformed")
	}
	return q, nil
}

// Decision is the operation the scope found the request to be.
type Decision struct {
	Service   string // the signing name
	Model     string // the service model, e.g. s3control; "" when unmodelled
	Operation string // as SDKs and CloudTrail name it; "" when not placed

	modelled   bool     // the signing name is in the models
	unplaced   string   // why the operation could not be placed
	needExact  []string // more actions the request needs, listed exactly
	needReason string   // why it needs them
	needAlso   []string // more actions the request needs, globs allowed
}

// Action is the decision as allowed_actions names it: service:Operation.
func (d Decision) Action() string {
	if d.Operation == "" {
		return ""
	}
	return d.Service + ":" + d.Operation
}

// Error is a refusal: Status 400 for a malformed request, 403 for one
// outside the scope. Msg starts with the field at fault and never quotes a
// caller's value.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func denied(msg string) error { return &Error{Status: http.StatusForbidden, Msg: msg} }
func bad(msg string) error    { return &Error{Status: http.StatusBadRequest, Msg: msg} }

// Check decides whether the policy allows the request, and which operation
// it is. Every step is a refusal the caller can read; the first one wins.
func (p *Policy) Check(r *Request) (Decision, error) {
	d := Decision{Service: r.Service}
	if err := p.checkTarget(r); err != nil {
		return d, err
	}
	var err error
	if isS3(r.Service) {
		d, err = p.checkS3(r)
	} else {
		d, err = p.checkOther(r)
	}
	if err != nil {
		return d, err
	}
	if err := p.checkAction(r, &d); err != nil {
		return d, err
	}
	if err := p.checkHeaders(r); err != nil {
		return d, err
	}
	return d, p.checkPresign(r)
}
