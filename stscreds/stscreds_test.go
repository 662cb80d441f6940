package stscreds_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/ststest"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
	"github.com/awshmac/vault-plugin-aws-hmac/stscreds"
)

const roleARN = "arn:aws:iam::123456789012:role/deploy"

func newPeer(t *testing.T) (*ststest.Server, hmac.Key) {
	t.Helper()
	srv := ststest.New()
	t.Cleanup(srv.Close)
	id, secret := srv.AddUser("vault")
	srv.AddRole(ststest.Role{ARN: roleARN, MaxSessionDuration: 4 * time.Hour})
	srv.AddRole(ststest.Role{ARN: "arn:aws:iam::123456789012:role/partner", ExternalID: "partner-42"})
	srv.AddMFADevice("arn:aws:iam::123456789012:mfa/vault", "123456")
	return srv, hmac.NewStaticKey(id, secret)
}

func newClient(t *testing.T, srv *ststest.Server, key hmac.Key, signer *sigv4.Signer) *sts.Client {
	t.Helper()
	c, err := stscreds.NewSTSClient(stscreds.Config{Key: key, Signer: signer, Region: "eu-west-3", Endpoint: srv.URL, IAMEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callerARN asks the peer who the credentials are, with the SDK's own
// signer and static credentials: the minted credentials must really work.
func callerARN(t *testing.T, srv *ststest.Server, c aws.Credentials) string {
	t.Helper()
	client := sts.New(sts.Options{
		Region:       "eu-west-3",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
	})
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("minted credentials refused: %v", err)
	}
	return aws.ToString(out.Arn)
}

func TestProvidersMintWorkingCredentials(t *testing.T) {
	srv, key := newPeer(t)
	signer := sigv4.NewSigner()
	client := newClient(t, srv, key, signer)
	tests := []struct {
		name     string
		provider interface {
			Mint(context.Context) (stscreds.Credentials, error)
		}
		wantARN    string
		wantLife   time.Duration
		wantAction string
		wantParams map[string]string
	}{
		{
			name:       "session token",
			provider:   stscreds.NewSessionTokenProvider(client),
			wantARN:    "arn:aws:iam::123456789012:user/vault",
			wantLife:   12 * time.Hour,
			wantAction: "GetSessionToken",
		},
		{
			name: "session token with MFA and duration",
			provider: stscreds.NewSessionTokenProvider(client, func(o *stscreds.SessionTokenOptions) {
				o.Duration = 2 * time.Hour
				o.SerialNumber = "arn:aws:iam::123456789012:mfa/vault"
				o.TokenCode = "123456"
			}),
			wantARN:    "arn:aws:iam::123456789012:user/vault",
			wantLife:   2 * time.Hour,
			wantAction: "GetSessionToken",
			wantParams: map[string]string{"DurationSeconds": "7200", "TokenCode": "123456"},
		},
		{
			name: "assume role with every option",
			provider: stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "vault-app"
				o.Duration = 3 * time.Hour
				o.Policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`
				o.PolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/extra"}
				o.Tags = []stscreds.Tag{{"team", "platform"}, {"env", "prod"}}
				o.TransitiveTagKeys = []string{"team"}
				o.SourceIdentity = "alice@example.com"
				o.SerialNumber = "arn:aws:iam::123456789012:mfa/vault"
				o.TokenCode = "123456"
			}),
			wantARN:    "arn:aws:sts::123456789012:assumed-role/deploy/vault-app",
			wantLife:   3 * time.Hour,
			wantAction: "AssumeRole",
			wantParams: map[string]string{
				"RoleSessionName": "vault-app", "DurationSeconds": "10800", "Tags.member.2.Key": "env",
				"PolicyArns.member.2.arn": "arn:aws:iam::123456789012:policy/extra", "TransitiveTagKeys.member.1": "team",
				"SourceIdentity": "alice@example.com", "SerialNumber": "arn:aws:iam::123456789012:mfa/vault",
			},
		},
		{
			name: "assume role with external id",
			provider: stscreds.NewAssumeRoleProvider(client, "arn:aws:iam::123456789012:role/partner", func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "p"
				o.ExternalID = "partner-42"
				o.RoleSessionName = "partner-session"
			}),
			wantARN:    "arn:aws:sts::123456789012:assumed-role/partner/partner-session",
			wantLife:   time.Hour,
			wantAction: "AssumeRole",
			wantParams: map[string]string{"ExternalId": "partner-42"},
		},
		{
			name: "federation token",
			provider: stscreds.NewFederationTokenProvider(client, "app-7", func(o *stscreds.FederationTokenOptions) {
				o.Duration = time.Hour
				o.Policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
				o.PolicyARNs = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"}
				o.Tags = []stscreds.Tag{{"cost-center", "42"}}
			}),
			wantARN:    "arn:aws:sts::123456789012:federated-user/app-7",
			wantLife:   time.Hour,
			wantAction: "GetFederationToken",
			wantParams: map[string]string{"Name": "app-7", "Tags.member.1.Value": "42"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Calls())
			creds, err := tt.provider.Mint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SecretAccessKey == "" || creds.SessionToken == "" {
				t.Fatalf("incomplete credentials for %s", creds.AccessKeyID)
			}
			if life := time.Until(creds.Expires); life < tt.wantLife-time.Minute || life > tt.wantLife+time.Minute {
				t.Errorf("credentials live %v, want %v", life, tt.wantLife)
			}
			if tt.wantAction != "GetSessionToken" && creds.ARN != tt.wantARN {
				t.Errorf("ARN %q, want %q", creds.ARN, tt.wantARN)
			}
			if got := callerARN(t, srv, creds.Credentials); got != tt.wantARN {
				t.Errorf("GetCallerIdentity says %q, want %q", got, tt.wantARN)
			}
			calls := srv.Calls()[before:]
			call := calls[0]
			if call.Action != tt.wantAction || call.AccessKeyID != key.AccessKeyID() {
				t.Fatalf("peer saw %s by %s", call.Action, call.AccessKeyID)
			}
			for k, v := range tt.wantParams {
				if got := call.Params[k]; len(got) != 1 || got[0] != v {
					t.Errorf("parameter %s = %v, want %q", k, got, v)
				}
			}
		})
	}
	// Five mints, one date, one region, one service: one key-store call.
	if calls := signer.KeyStoreCalls(); calls != 1 {
		t.Errorf("key store asked %d times, want 1", calls)
	}
}

func TestWrongSecretIsClearError(t *testing.T) {
	srv, key := newPeer(t)
	wrong := hmac.NewStaticKey(key.AccessKeyID(), "not-the-secret-0123456789abcdefghijklmno")
	_, err := stscreds.NewSessionTokenProvider(newClient(t, srv, wrong, nil)).Retrieve(context.Background())
	var stsErr *stscreds.Error
	if !errors.As(err, &stsErr) {
		t.Fatalf("err = %v, want *stscreds.Error", err)
	}
	if stsErr.Code != "SignatureDoesNotMatch" || stsErr.StatusCode != http.StatusForbidden || stsErr.Operation != "GetSessionToken" {
		t.Fatalf("got %+v", stsErr)
	}
	if !strings.Contains(err.Error(), "SignatureDoesNotMatch") || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("error text %q", err)
	}
	if srv.Refused() != 1 {
		t.Fatalf("peer refused %d requests, want 1", srv.Refused())
	}
}

func TestSTSRefusalsKeepAWSCodes(t *testing.T) {
	srv, key := newPeer(t)
	client := newClient(t, srv, key, nil)
	tests := []struct {
		name     string
		provider aws.CredentialsProvider
		wantCode string
	}{
		{"role not assumable", stscreds.NewAssumeRoleProvider(client, "arn:aws:iam::123456789012:role/other", func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "x1" }), "AccessDenied"},
		{"duration above max session", stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "x1"
			o.Duration = 5 * time.Hour
		}), "ValidationError"},
		{"external id missing", stscreds.NewAssumeRoleProvider(client, "arn:aws:iam::123456789012:role/partner", func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "x1" }), "AccessDenied"},
		{"bad MFA code", stscreds.NewSessionTokenProvider(client, func(o *stscreds.SessionTokenOptions) {
			o.SerialNumber = "arn:aws:iam::123456789012:mfa/vault"
			o.TokenCode = "000000"
		}), "AccessDenied"},
		{"malformed policy", stscreds.NewFederationTokenProvider(client, "app", func(o *stscreds.FederationTokenOptions) { o.Policy = "{not json" }), "MalformedPolicyDocument"},
		{"session name too short", stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "x" }), "ValidationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.provider.Retrieve(context.Background())
			var stsErr *stscreds.Error
			if !errors.As(err, &stsErr) || stsErr.Code != tt.wantCode {
				t.Fatalf("err = %v, want code %s", err, tt.wantCode)
			}
		})
	}
}

func TestTemporaryCredentialsCannotGetSessionToken(t *testing.T) {
	srv, key := newPeer(t)
	creds, err := stscreds.NewAssumeRoleProvider(newClient(t, srv, key, nil), roleARN, func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "chain" }).Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Sign with the temporary key through this project's signer, passing the token.
	temp := hmac.NewStaticKey(creds.AccessKeyID, creds.SecretAccessKey)
	client := sts.New(sts.Options{
		Region: "eu-west-3", BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, "unused", creds.SessionToken),
		HTTPSignerV4: stscreds.NewHTTPSigner(temp, nil),
	})
	if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("session token signed through HTTPSigner refused: %v", err)
	}
	_, err = stscreds.NewSessionTokenProvider(client).Retrieve(context.Background())
	var stsErr *stscreds.Error
	if !errors.As(err, &stsErr) || stsErr.Code != "AccessDenied" || !strings.Contains(stsErr.Message, "session credentials") {
		t.Fatalf("err = %v", err)
	}
}

func TestRetriesAndFaults(t *testing.T) {
	srv, key := newPeer(t)
	client := newClient(t, srv, key, nil)
	srv.InjectFault(ststest.Fault{Code: "Throttling", Message: "Rate exceeded", Status: 400, Count: 1})
	if _, err := stscreds.NewSessionTokenProvider(client).Retrieve(context.Background()); err != nil {
		t.Fatalf("a throttled call was not retried: %v", err)
	}

	noRetry, err := stscreds.NewSTSClient(stscreds.Config{Key: key, Endpoint: srv.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(ststest.Fault{Code: "ServiceUnavailable", Message: "try later", Status: 503, Count: 1})
	_, err = stscreds.NewSessionTokenProvider(noRetry).Retrieve(context.Background())
	var stsErr *stscreds.Error
	if !errors.As(err, &stsErr) || stsErr.Code != "ServiceUnavailable" || stsErr.StatusCode != 503 {
		t.Fatalf("err = %v", err)
	}
}

func TestHonoursContext(t *testing.T) {
	srv, key := newPeer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := stscreds.NewSessionTokenProvider(newClient(t, srv, key, nil)).Retrieve(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Fatalf("%d calls reached STS after cancel", n)
	}
}

// recordingTransport answers every request itself, so endpoint resolution
// can be checked without a network.
type recordingTransport struct{ req *http.Request }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.req = req
	return nil, errors.New("recorded")
}

func TestRegionalEndpoint(t *testing.T) {
	key := hmac.NewStaticKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	for _, region := range []string{"eu-west-3", "ap-southeast-2", "us-east-1"} {
		rt := &recordingTransport{}
		client, err := stscreds.NewSTSClient(stscreds.Config{Key: key, Region: region, MaxRetries: -1, HTTPClient: &http.Client{Transport: rt}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = stscreds.NewSessionTokenProvider(client).Retrieve(context.Background())
		if rt.req == nil {
			t.Fatal("no request sent")
		}
		if want := "sts." + region + ".amazonaws.com"; rt.req.URL.Host != want {
			t.Errorf("region %s: endpoint %s, want %s", region, rt.req.URL.Host, want)
		}
		if auth := rt.req.Header.Get("Authorization"); !strings.Contains(auth, "/"+region+"/sts/aws4_request") {
			t.Errorf("region %s: scope in %q", region, auth)
		}
	}
}

func TestIAMAccessKeysThroughKeyStore(t *testing.T) {
	srv, key := newPeer(t)
	client, err := stscreds.NewIAMClient(stscreds.Config{Key: key, IAMEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created, err := client.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	newID := aws.ToString(created.AccessKey.AccessKeyId)
	list, err := client.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.AccessKeyMetadata) != 2 {
		t.Fatalf("%d keys listed, want 2", len(list.AccessKeyMetadata))
	}
	// The new key works on its own.
	if arn := callerARN(t, srv, aws.Credentials{AccessKeyID: newID, SecretAccessKey: aws.ToString(created.AccessKey.SecretAccessKey)}); arn != "arn:aws:iam::123456789012:user/vault" {
		t.Fatalf("new key is %s", arn)
	}
	if _, err := client.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(newID)}); err != nil {
		t.Fatal(err)
	}
	if ids := srv.AccessKeyIDs("vault"); len(ids) != 1 || ids[0] != key.AccessKeyID() {
		t.Fatalf("keys left: %v", ids)
	}
}

func TestHTTPSignerRefusesOtherAccessKey(t *testing.T) {
	s := stscreds.NewHTTPSigner(hmac.NewStaticKey("AKIDONE", "secret"), nil)
	r, _ := http.NewRequest(http.MethodPost, "https://sts.us-east-1.amazonaws.com/", nil)
	err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTWO"}, r, sigv4.EmptyStringSHA256, "sts", "us-east-1", time.Now())
	if err == nil || r.Header.Get("Authorization") != "" {
		t.Fatalf("signed for another access key: %v", err)
	}
}

func TestExpiredCredentialsAreRefused(t *testing.T) {
	srv, key := newPeer(t)
	creds, err := stscreds.NewSessionTokenProvider(newClient(t, srv, key, nil), func(o *stscreds.SessionTokenOptions) {
		o.Duration = 15 * time.Minute
	}).Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Sixteen minutes on: the credentials have expired, and requests signed
	// at that time are not refused for skew.
	later := time.Now().Add(16 * time.Minute)
	srv.SetClock(func() time.Time { return later })
	client := sts.New(sts.Options{
		Region: "eu-west-3", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		HTTPSignerV4: clockSigner{stscreds.NewHTTPSigner(hmac.NewStaticKey(creds.AccessKeyID, creds.SecretAccessKey), nil), later},
	})
	_, err = client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	stsErr := stscreds.WrapError("GetCallerIdentity", err).(*stscreds.Error)
	if stsErr.Code != "ExpiredToken" {
		t.Fatalf("expired credentials: %v", err)
	}
}

// clockSigner signs as if at a fixed time.
type clockSigner struct {
	inner interface {
		SignHTTP(context.Context, aws.Credentials, *http.Request, string, string, string, time.Time, ...func(*sdkv4.SignerOptions)) error
	}
	at time.Time
}

func (c clockSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, opts ...func(*sdkv4.SignerOptions)) error {
	return c.inner.SignHTTP(ctx, creds, r, payloadHash, service, region, c.at, opts...)
}
