package stscreds

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ChainedSessionLimit is the longest session STS grants to a role assumed
// with another role's session.
const ChainedSessionLimit = time.Hour

// Hop is one role of a chain after the first, with the external ID its
// trust policy asks for.
type Hop struct {
	RoleARN    string
	ExternalID string
}

// NewSessionSTSClient returns an STS client signing with temporary
// credentials, at c's endpoint and region: the client for a chain's next hop.
// Those credentials are held in memory; c.Key is not used.
func NewSessionSTSClient(c Config, creds aws.Credentials) *sts.Client {
	cfg := c.awsConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
}

// Chain assumes each hop with the previous hop's session, starting from
// first; the last hop gets last's options (policy, tags, duration capped at
// ChainedSessionLimit), the hops between live the shortest STS allows.
func Chain(ctx context.Context, c Config, first Credentials, hops []Hop, sessionName string, last AssumeRoleOptions) (Credentials, error) {
	if len(hops) == 0 {
		return first, errors.New("stscreds: a chain needs at least one hop")
	}
	creds := first
	for i, h := range hops {
		opts := AssumeRoleOptions{RoleSessionName: sessionName, Duration: 15 * time.Minute, ExternalID: h.ExternalID}
		if i == len(hops)-1 {
			opts = last
			opts.RoleSessionName, opts.ExternalID = sessionName, h.ExternalID
			opts.Duration = min(opts.Duration, ChainedSessionLimit)
		}
		client := NewSessionSTSClient(c, creds.Credentials)
		next, err := NewAssumeRoleProvider(client, h.RoleARN, func(o *AssumeRoleOptions) { *o = opts }).Mint(ctx)
		if err != nil {
			return Credentials{}, err
		}
		creds = next
	}
	return creds, nil
}
