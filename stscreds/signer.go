// Package stscreds connects aws-sdk-go-v2 to keys whose secret lives in a key
// store: an HTTPSignerV4 that signs through sigv4 and an hmac.Key, clients
// for STS and IAM built on it, credential providers for GetSessionToken,
// AssumeRole and GetFederationToken, role chaining, and the IAM role calls
// that per-session revocation needs (GetRole, inline role policies).
package stscreds

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

// HTTPSigner satisfies the HTTPSignerV4 interface of aws-sdk-go-v2's service
// clients, signing with a Key instead of a secret in aws.Credentials.
type HTTPSigner struct {
	key    hmac.Key
	signer *sigv4.Signer
}

// NewHTTPSigner returns an HTTPSigner for key. signer may be shared, so that
// its derived-key cache serves every client; nil makes a new one.
func NewHTTPSigner(key hmac.Key, signer *sigv4.Signer) *HTTPSigner {
	if signer == nil {
		signer = sigv4.NewSigner()
	}
	return &HTTPSigner{key: key, signer: signer}
}

// SignHTTP signs r. The credentials' access key ID must be the key's; their
// session token, if any, is sent and signed.
func (s *HTTPSigner) SignHTTP(ctx context.Context, credentials aws.Credentials, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*sdkv4.SignerOptions)) error {
	if credentials.AccessKeyID != s.key.AccessKeyID() {
		return fmt.Errorf("stscreds: credentials are for access key %q but the signing key is %q", credentials.AccessKeyID, s.key.AccessKeyID())
	}
	var sdkOpts sdkv4.SignerOptions
	for _, fn := range optFns {
		fn(&sdkOpts)
	}
	return s.signer.SignHTTP(ctx, s.key, r, payloadHash, service, region, signingTime, func(o *sigv4.SignerOptions) {
		o.DisableHeaderHoisting = sdkOpts.DisableHeaderHoisting
		o.DisableURIPathEscaping = sdkOpts.DisableURIPathEscaping
		o.DisableSessionToken = sdkOpts.DisableSessionToken
		o.SessionToken = credentials.SessionToken
	})
}

// keyIdentity is the aws.CredentialsProvider the clients are given: it names
// the access key, while the secret stays in the key store. The SDK requires a
// non-empty secret to sign at all, so a placeholder stands in for it; the
// HTTPSigner never reads it.
type keyIdentity struct{ accessKeyID string }

const secretPlaceholder = "held-by-key-store"

func (k keyIdentity) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: k.accessKeyID, SecretAccessKey: secretPlaceholder, Source: "hmac.Key"}, nil
}
