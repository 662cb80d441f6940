package ststest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	stsVersion   = "2011-06-15"
	iamVersion   = "2010-05-08"
)

// apiError is an error answered in the Query protocol's envelope.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func validationError(format string, args ...any) *apiError {
	return &apiError{400, "ValidationError", fmt.Sprintf(format, args...)}
}

func accessDenied(format string, args ...any) *apiError {
	return &apiError{403, "AccessDenied", fmt.Sprintf(format, args...)}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.wait(r) {
		panic(http.ErrAbortHandler) // drop the connection without an answer
	}
	body, params, perr := readParams(r)
	if perr != nil {
		writeError(w, perr, stsNamespace)
		return
	}
	s.holdFor(r, params)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()

	if e := s.takeFaultLocked(params.Get("Action")); e != nil {
		writeError(w, e, stsNamespace)
		return
	}
	p, aerr := parseAuth(r)
	if aerr != nil {
		s.refused++
		writeError(w, &apiError{aerr.status, aerr.code, aerr.message}, stsNamespace)
		return
	}
	ns := stsNamespace
	if p.service == "iam" {
		ns = iamNamespace
	}
	key, aerr := s.authenticate(r, body, p, now)
	if aerr != nil {
		s.refused++
		writeError(w, &apiError{aerr.status, aerr.code, aerr.message}, ns)
		return
	}
	action := params.Get("Action")
	s.calls = append(s.calls, Call{Service: p.service, Action: action, AccessKeyID: key.id, Params: params})
	result, apiErr := s.dispatch(p.service, action, params, key, now)
	if apiErr != nil {
		writeError(w, apiErr, ns)
		return
	}
	writeResult(w, action, ns, result)
}

// readParams reads the form body and the query's parameters (SigV4's own
// X-Amz-* ones left out).
func readParams(r *http.Request) ([]byte, url.Values, *apiError) {
	body, err := readBody(r)
	if err != nil {
		return nil, nil, &apiError{400, "MalformedInput", "unreadable body"}
	}
	params, err := url.ParseQuery(string(body))
	if err != nil || (r.Method != http.MethodPost && len(body) > 0) {
		return nil, nil, &apiError{400, "MalformedInput", "the body is not a valid form"}
	}
	for k, v := range r.URL.Query() {
		if !strings.HasPrefix(k, "X-Amz-") {
			params[k] = append(params[k], v...)
		}
	}
	return body, params, nil
}

// writeResult answers in the Query protocol's XML envelope.
func writeResult(w http.ResponseWriter, action, ns string, result any) {
	w.Header().Set("Content-Type", "text/xml")
	reqID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	type envelope struct {
		XMLName  xml.Name
		XMLNS    string `xml:"xmlns,attr"`
		Result   any
		Metadata struct {
			RequestID string `xml:"RequestId"`
		} `xml:"ResponseMetadata"`
	}
	env := envelope{XMLName: xml.Name{Local: action + "Response"}, XMLNS: ns, Result: result}
	env.Metadata.RequestID = reqID
	out, err := xml.Marshal(env)
	if err != nil {
		writeError(w, &apiError{500, "InternalFailure", err.Error()}, ns)
		return
	}
	_, _ = w.Write(out)
}

// authenticate finds the access key and checks the signature, the scope,
// the session token and the key's expiry.
func (s *Server) authenticate(r *http.Request, body []byte, p sigParts, now time.Time) (*accessKey, *authError) {
	key, ok := s.keys[p.accessKeyID]
	// A new key works only once IAM has propagated it, as on AWS.
	if !ok || !key.active || now.Before(key.usableAt) {
		return nil, &authError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if p.service != "sts" && p.service != "iam" {
		return nil, &authError{403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'."}
	}
	if s.region != "" && p.region != s.region {
		return nil, &authError{403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region."}
	}
	if key.token != "" && p.token != key.token {
		return nil, &authError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if key.token == "" && p.token != "" {
		return nil, &authError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	if err := s.verify(r, body, p, key, now); err != nil {
		return nil, err
	}
	if !key.expires.IsZero() && now.After(key.expires) {
		return nil, &authError{400, "ExpiredToken", "The security token included in the request is expired"}
	}
	return key, nil
}

func (s *Server) dispatch(service, action string, params url.Values, key *accessKey, now time.Time) (any, *apiError) {
	version := params.Get("Version")
	if s.deniedLocked(key, service+":"+action) {
		return nil, accessDenied("User: %s is not authorized to perform: %s:%s with an explicit deny in an identity-based policy", key.arn, service, action)
	}
	switch service {
	case "sts":
		if version != stsVersion {
			return nil, &apiError{400, "InvalidParameterValue", "Could not find operation " + action + " for version " + version}
		}
		switch action {
		case "GetCallerIdentity":
			return getCallerIdentityResult{Arn: key.arn, UserID: key.userID, Account: Account}, nil
		case "GetSessionToken":
			return s.getSessionToken(params, key, now)
		case "AssumeRole":
			return s.assumeRole(params, key, now)
		case "GetFederationToken":
			return s.getFederationToken(params, key, now)
		}
	case "iam":
		if version != iamVersion {
			return nil, &apiError{400, "InvalidParameterValue", "Could not find operation " + action + " for version " + version}
		}
		if key.kind == kindSession && !key.mfa {
			return nil, &apiError{403, "InvalidClientTokenId", "The security token included in the request is invalid"}
		}
		if key.kind == kindFederation {
			return nil, accessDenied("Federated users cannot call IAM")
		}
		switch action {
		case "CreateAccessKey":
			return s.createAccessKey(params, key)
		case "DeleteAccessKey":
			return s.deleteAccessKey(params, key)
		case "ListAccessKeys":
			return s.listAccessKeys(params, key)
		}
		if res, err, ok := s.iamRoleAction(action, params); ok {
			return res, err
		}
	}
	return nil, &apiError{400, "InvalidAction", "Could not find operation " + action + " for version " + version}
}

func writeError(w http.ResponseWriter, e *apiError, ns string) {
	type errorBody struct {
		Type    string
		Code    string
		Message string
	}
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	out, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		Error     errorBody
		RequestID string `xml:"RequestId"`
	}{XMLNS: ns, Error: errorBody{typ, e.code, e.message}, RequestID: newRequestID()})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(out)
}

func newRequestID() string {
	id := strings.ToLower(randomID(32))
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}
