package stscreds

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

// STSClient is the part of *sts.Client the providers use.
type STSClient interface {
	GetSessionToken(context.Context, *sts.GetSessionTokenInput, ...func(*sts.Options)) (*sts.GetSessionTokenOutput, error)
	AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetFederationToken(context.Context, *sts.GetFederationTokenInput, ...func(*sts.Options)) (*sts.GetFederationTokenOutput, error)
}

// Credentials are temporary credentials and the identity they act as.
type Credentials struct {
	aws.Credentials
	// ARN is the assumed-role or federated-user ARN; empty for GetSessionToken.
	ARN string
	// AssumedRoleID is AssumeRole's AROA...:session-name, the session's
	// aws:userid; empty for the other calls.
	AssumedRoleID string
}

// Error is an STS refusal or failure, with AWS's code and message.
type Error struct {
	Operation  string
	Code       string // e.g. AccessDenied, SignatureDoesNotMatch; empty when STS was not reached
	Message    string
	StatusCode int // HTTP status, 0 when STS was not reached
	Err        error
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("sts %s: %s: %s", e.Operation, e.Code, e.Message)
	}
	return fmt.Sprintf("sts %s: %v", e.Operation, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// WrapError turns an STS or IAM client error into an *Error.
func WrapError(op string, err error) error {
	e := &Error{Operation: op, Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code, e.Message = apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		e.StatusCode = respErr.HTTPStatusCode()
	}
	return e
}

func fromSTS(c *types.Credentials, source, arn string) (Credentials, error) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return Credentials{}, errors.New("stscreds: STS answered without complete credentials")
	}
	return Credentials{
		Credentials: aws.Credentials{
			AccessKeyID:     *c.AccessKeyId,
			SecretAccessKey: *c.SecretAccessKey,
			SessionToken:    *c.SessionToken,
			Source:          source,
			CanExpire:       true,
			Expires:         *c.Expiration,
		},
		ARN: arn,
	}, nil
}

func seconds(d time.Duration) *int32 {
	if d <= 0 {
		return nil
	}
	return aws.Int32(int32(d / time.Second))
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func policyARNs(arns []string) []types.PolicyDescriptorType {
	var out []types.PolicyDescriptorType
	for _, a := range arns {
		out = append(out, types.PolicyDescriptorType{Arn: aws.String(a)})
	}
	return out
}

// Tag is a session tag.
type Tag struct{ Key, Value string }

func stsTags(tags []Tag) []types.Tag {
	var out []types.Tag
	for _, t := range tags {
		out = append(out, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	return out
}

// SessionTokenOptions are GetSessionToken's parameters.
type SessionTokenOptions struct {
	Duration     time.Duration // 0: STS's default (12 hours)
	SerialNumber string        // MFA device
	TokenCode    string        // MFA code
}

// SessionTokenProvider mints credentials with GetSessionToken.
type SessionTokenProvider struct {
	client  STSClient
	options SessionTokenOptions
}

// NewSessionTokenProvider returns a provider calling GetSessionToken.
func NewSessionTokenProvider(client STSClient, optFns ...func(*SessionTokenOptions)) *SessionTokenProvider {
	p := &SessionTokenProvider{client: client}
	for _, fn := range optFns {
		fn(&p.options)
	}
	return p
}

// Retrieve implements aws.CredentialsProvider.
func (p *SessionTokenProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.Mint(ctx)
	return c.Credentials, err
}

// Mint calls GetSessionToken.
func (p *SessionTokenProvider) Mint(ctx context.Context) (Credentials, error) {
	out, err := p.client.GetSessionToken(ctx, &sts.GetSessionTokenInput{
		DurationSeconds: seconds(p.options.Duration),
		SerialNumber:    optional(p.options.SerialNumber),
		TokenCode:       optional(p.options.TokenCode),
	})
	if err != nil {
		return Credentials{}, WrapError("GetSessionToken", err)
	}
	return fromSTS(out.Credentials, "GetSessionToken", "")
}

// AssumeRoleOptions are AssumeRole's parameters besides the role ARN.
type AssumeRoleOptions struct {
	RoleSessionName   string        // required by STS
	Duration          time.Duration // 0: STS's default (1 hour)
	Policy            string        // inline session policy (JSON)
	PolicyARNs        []string      // managed session policies
	Tags              []Tag         // session tags
	TransitiveTagKeys []string
	ExternalID        string
	SourceIdentity    string
	SerialNumber      string // MFA device
	TokenCode         string // MFA code
}

// AssumeRoleProvider mints credentials with AssumeRole.
type AssumeRoleProvider struct {
	client  STSClient
	roleARN string
	options AssumeRoleOptions
}

// NewAssumeRoleProvider returns a provider assuming roleARN.
func NewAssumeRoleProvider(client STSClient, roleARN string, optFns ...func(*AssumeRoleOptions)) *AssumeRoleProvider {
	p := &AssumeRoleProvider{client: client, roleARN: roleARN}
	for _, fn := range optFns {
		fn(&p.options)
	}
	return p
}

// Retrieve implements aws.CredentialsProvider.
func (p *AssumeRoleProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.Mint(ctx)
	return c.Credentials, err
}

// Mint calls AssumeRole.
func (p *AssumeRoleProvider) Mint(ctx context.Context) (Credentials, error) {
	o := p.options
	in := &sts.AssumeRoleInput{
		RoleArn:           aws.String(p.roleARN),
		RoleSessionName:   aws.String(o.RoleSessionName),
		DurationSeconds:   seconds(o.Duration),
		Policy:            optional(o.Policy),
		PolicyArns:        policyARNs(o.PolicyARNs),
		Tags:              stsTags(o.Tags),
		TransitiveTagKeys: o.TransitiveTagKeys,
		ExternalId:        optional(o.ExternalID),
		SourceIdentity:    optional(o.SourceIdentity),
		SerialNumber:      optional(o.SerialNumber),
		TokenCode:         optional(o.TokenCode),
	}
	out, err := p.client.AssumeRole(ctx, in)
	if err != nil {
		return Credentials{}, WrapError("AssumeRole", err)
	}
	var arn, id string
	if out.AssumedRoleUser != nil {
		arn, id = aws.ToString(out.AssumedRoleUser.Arn), aws.ToString(out.AssumedRoleUser.AssumedRoleId)
	}
	c, err := fromSTS(out.Credentials, "AssumeRole", arn)
	c.AssumedRoleID = id
	return c, err
}

// FederationTokenOptions are GetFederationToken's parameters besides the name.
type FederationTokenOptions struct {
	Duration   time.Duration // 0: STS's default (12 hours)
	Policy     string
	PolicyARNs []string
	Tags       []Tag
}

// FederationTokenProvider mints credentials with GetFederationToken.
type FederationTokenProvider struct {
	client  STSClient
	name    string
	options FederationTokenOptions
}

// NewFederationTokenProvider returns a provider for the federated user name.
func NewFederationTokenProvider(client STSClient, name string, optFns ...func(*FederationTokenOptions)) *FederationTokenProvider {
	p := &FederationTokenProvider{client: client, name: name}
	for _, fn := range optFns {
		fn(&p.options)
	}
	return p
}

// Retrieve implements aws.CredentialsProvider.
func (p *FederationTokenProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.Mint(ctx)
	return c.Credentials, err
}

// Mint calls GetFederationToken.
func (p *FederationTokenProvider) Mint(ctx context.Context) (Credentials, error) {
	o := p.options
	out, err := p.client.GetFederationToken(ctx, &sts.GetFederationTokenInput{
		Name:            aws.String(p.name),
		DurationSeconds: seconds(o.Duration),
		Policy:          optional(o.Policy),
		PolicyArns:      policyARNs(o.PolicyARNs),
		Tags:            stsTags(o.Tags),
	})
	if err != nil {
		return Credentials{}, WrapError("GetFederationToken", err)
	}
	var arn string
	if out.FederatedUser != nil && out.FederatedUser.Arn != nil {
		arn = *out.FederatedUser.Arn
	}
	return fromSTS(out.Credentials, "GetFederationToken", arn)
}
