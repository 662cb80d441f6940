package stscreds

import (
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

// DefaultRegion is the STS region used when none is configured.
const DefaultRegion = "us-east-1"

// Config describes how to reach STS and IAM with a Key.
type Config struct {
	// Key signs every request. Required.
	Key hmac.Key
	// Signer is shared by the clients for its derived-key cache; nil makes one.
	Signer *sigv4.Signer
	// Region is the STS region; the client uses that region's endpoint,
	// sts.REGION.amazonaws.com. Default us-east-1.
	Region string
	// Endpoint overrides the STS endpoint URL (a VPC endpoint, a FIPS
	// endpoint, a test server). Requests are still signed for Region.
	Endpoint string
	// IAMEndpoint overrides the IAM endpoint URL.
	IAMEndpoint string
	// MaxRetries is how many times a throttled or failed call is retried;
	// 0 means the SDK's default (2 retries), negative means none.
	MaxRetries int
	// HTTPClient sends the requests; nil means the SDK's default.
	HTTPClient *http.Client
}

func (c Config) validate() error {
	if c.Key == nil {
		return errors.New("stscreds: no key")
	}
	if strings.TrimSpace(c.Key.AccessKeyID()) == "" {
		return errors.New("stscreds: the key has no access key ID")
	}
	return nil
}

func (c Config) awsConfig() aws.Config {
	region := c.Region
	if region == "" {
		region = DefaultRegion
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: keyIdentity{accessKeyID: c.Key.AccessKeyID()},
	}
	if c.HTTPClient != nil {
		cfg.HTTPClient = c.HTTPClient
	}
	switch {
	case c.MaxRetries < 0:
		cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	case c.MaxRetries > 0:
		cfg.Retryer = func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = c.MaxRetries + 1 })
		}
	}
	return cfg
}

// NewSTSClient returns the official STS client, signing through c.Key.
func NewSTSClient(c Config) (*sts.Client, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	signer := NewHTTPSigner(c.Key, c.Signer)
	return sts.NewFromConfig(c.awsConfig(), func(o *sts.Options) {
		o.HTTPSignerV4 = signer
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}), nil
}

// NewIAMClient returns the official IAM client, signing through c.Key.
// IAM is a global service: its requests are signed for us-east-1 unless
// IAMEndpoint points elsewhere, in which case Region is used.
func NewIAMClient(c Config) (*iam.Client, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	signer := NewHTTPSigner(c.Key, c.Signer)
	return iam.NewFromConfig(c.awsConfig(), func(o *iam.Options) {
		o.HTTPSignerV4 = signer
		if c.IAMEndpoint != "" {
			o.BaseEndpoint = aws.String(c.IAMEndpoint)
		}
	}), nil
}
