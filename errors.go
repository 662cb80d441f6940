package awshmac

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

// The error kinds a handler can end with. respond maps each to its answer;
// anything else is an internal error (500).

// badInputError is a caller's mistake: 400, the message names the field.
type badInputError struct{ msg string }

func (e *badInputError) Error() string { return e.msg }

// badInput returns a 400 whose message must start with or name the field.
func badInput(format string, args ...any) error {
	return &badInputError{msg: fmt.Sprintf(format, args...)}
}

// scopeError is a request outside the role's scope: 403 with the reason.
type scopeError struct{ msg string }

func (e *scopeError) Error() string { return e.msg }

func outOfScope(format string, args ...any) error {
	return &scopeError{msg: fmt.Sprintf(format, args...)}
}

// storeError is the key store failing (down, refusing): 503 naming the
// store. Callers of sign/ and creds/ see the cause; the detail (paths,
// devices, library errors) goes to the server log.
type storeError struct {
	store string
	err   error
}

func (e *storeError) Error() string {
	var refused *authBackoffError
	if errors.As(e.err, &refused) {
		return refused.Error() // why, and when it is asked again
	}
	// A store may say why in words fit for any caller (no paths or names).
	var r interface{ PublicReason() string }
	if errors.As(e.err, &r) {
		return fmt.Sprintf("the %s key store is unavailable: %s", e.store, r.PublicReason())
	}
	return fmt.Sprintf("the %s key store is unavailable", e.store)
}

func (e *storeError) Unwrap() error { return e.err }

// forOperator is the failure as a config write reports it: the operator
// chose the store's parameters, so it is a 400 with the store's detail.
func (e *storeError) forOperator() error {
	return badInput("key_store: cannot use the key in the %s key store: %v", e.store, e.err)
}

// stsError is STS or IAM failing a call: refused (400 with AWS's code),
// down (502) or not answering within sts_timeout (504). Its message names
// the service actually called (see label).
type stsError struct {
	service string // "STS" or "IAM"; empty: by op (see label)
	op      string
	err     error
	timeout time.Duration // set when the deadline passed
	code    int           // a status that overrides the derived one
	detail  string        // what went wrong, when STS answered but not as it must
}

func (e *stsError) Error() string {
	svc := e.label()
	if e.detail != "" {
		return fmt.Sprintf("%s %s: %s", svc, e.op, e.detail)
	}
	if e.timeout > 0 {
		return fmt.Sprintf("%s did not answer %s within sts_timeout (%s)", svc, e.op, e.timeout)
	}
	var aws *stscreds.Error
	if errors.As(e.err, &aws) && aws.Code != "" {
		return fmt.Sprintf("%s %s refused: %s: %s", svc, e.op, aws.Code, aws.Message)
	}
	return fmt.Sprintf("%s could not be reached for %s", svc, e.op)
}

// label names the service called: the SDK's own record of it, else the
// operation's service, else STS.
func (e *stsError) label() string {
	if e.service != "" {
		return e.service
	}
	var call *smithy.OperationError
	if errors.As(e.err, &call) && call.Service() != "" {
		return strings.ToUpper(call.Service())
	}
	name, _, _ := strings.Cut(e.op, " ")
	if iamOperations[name] {
		return "IAM"
	}
	return "STS"
}

// iamOperations are the IAM calls the plugin makes, for errors that did not
// come through the SDK (an answer the plugin refused).
var iamOperations = map[string]bool{
	"CreateAccessKey": true, "DeleteAccessKey": true, "ListAccessKeys": true, "GetUser": true,
	"GetRole": true, "PutRolePolicy": true, "DeleteRolePolicy": true, "GetRolePolicy": true,
}

func (e *stsError) Unwrap() error { return e.err }

func (e *stsError) status() int {
	var aws *stscreds.Error
	switch {
	case e.code != 0:
		return e.code
	case e.timeout > 0:
		return http.StatusGatewayTimeout
	case errors.As(e.err, &aws) && aws.Code != "" && aws.StatusCode < 500:
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

// errNotConfigured answers paths that need a key before config is written.
var errNotConfigured = badInput("the engine has no config: write aws-hmac/config first")

// classifySTS turns an STS or IAM client error into the error kind it is:
// the key store's failure, a timeout of ours, the caller leaving, or the
// service's answer, labelled with the service the SDK called.
func classifySTS(ctx context.Context, op string, timeout time.Duration, err error) error {
	var se *storeError
	switch {
	case errors.As(err, &se):
		return se
	case ctx.Err() != nil:
		return ctx.Err() // the caller gave up: nothing to tell them
	case errors.Is(err, context.DeadlineExceeded):
		return &stsError{op: op, err: err, timeout: timeout}
	}
	return &stsError{op: op, err: stscreds.WrapError(op, err)}
}

// respond ends every handler: a response, or the error mapped to its status.
func (b *backend) respond(resp *logical.Response, err error) (*logical.Response, error) {
	if err == nil {
		return resp, nil
	}
	var (
		bad   *badInputError
		scope *scopeError
		store *storeError
		sts   *stsError
	)
	switch {
	case errors.As(err, &bad):
		return logical.ErrorResponse(bad.msg), nil
	case errors.As(err, &scope):
		return nil, logical.CodedError(http.StatusForbidden, scope.msg)
	case errors.As(err, &store):
		if !isAuthBackoff(store) { // the back-off logs each refusal once
			b.Logger().Warn("key store unavailable", "store", store.store, "error", store.err)
		}
		return nil, logical.CodedError(http.StatusServiceUnavailable, store.Error())
	case errors.As(err, &sts):
		if sts.status() == http.StatusBadRequest {
			return logical.ErrorResponse(sts.Error()), nil
		}
		b.Logger().Warn(sts.label()+" unavailable", "operation", sts.op, "error", sts.err)
		return nil, logical.CodedError(sts.status(), sts.Error())
	}
	return nil, err
}
