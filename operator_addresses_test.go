package awshmac

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestAddressAllowLists(t *testing.T) {
	def := loadOperatorEnv(func(string) string { return "" })
	listed := loadOperatorEnv(func(name string) string {
		return map[string]string{
			envTransitAddresses: "https://Vault.Example:443, http://10.0.0.5:8200",
			envKEKURIs:          "aws-kms://arn:aws:kms:eu-west-3:123456789012:key/*,gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
			envSTSEndpoints:     "sts.internal.example,*.vpce.example",
		}[name]
	})
	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"default: loopback Vault", def.allowsVaultAddress("http://127.0.0.1:8200"), true},
		{"default: localhost Vault", def.allowsVaultAddress("https://localhost:8200"), true},
		{"default: another Vault", def.allowsVaultAddress("https://elsewhere.example"), false},
		{"default: a look-alike", def.allowsVaultAddress("https://127.0.0.1.example.com"), false},
		{"listed, default port", listed.allowsVaultAddress("https://vault.example"), true},
		{"listed, host case", listed.allowsVaultAddress("https://VAULT.example:443/"), true},
		{"listed, other port", listed.allowsVaultAddress("https://vault.example:8443"), false},
		{"listed, other scheme", listed.allowsVaultAddress("http://vault.example:443"), false},
		{"listed: loopback no longer by default", listed.allowsVaultAddress("http://127.0.0.1:8200"), false},
		{"default KEK: local Vault", def.allowsKEK("hcvault://127.0.0.1:8200/transit/keys/kek"), true},
		{"default KEK: cloud KMS", def.allowsKEK("aws-kms://arn:aws:kms:eu-west-3:999999999999:key/x"), false},
		{"default KEK: remote Vault", def.allowsKEK("hcvault://vault.evil.example/transit/keys/kek"), false},
		{"listed KEK by prefix", listed.allowsKEK("aws-kms://arn:aws:kms:eu-west-3:123456789012:key/abc"), true},
		{"listed KEK, other account", listed.allowsKEK("aws-kms://arn:aws:kms:eu-west-3:999999999999:key/abc"), false},
		{"listed KEK exactly", listed.allowsKEK("gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"), true},
		{"listed KEK, longer", listed.allowsKEK("gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k2"), false},
		{"default STS: AWS", def.allowsSTSEndpoint("https://sts.eu-west-3.amazonaws.com"), true},
		{"default STS: IAM", def.allowsSTSEndpoint("https://iam.amazonaws.com"), true},
		{"default STS: China", def.allowsSTSEndpoint("https://sts.cn-north-1.amazonaws.com.cn"), true},
		{"default STS: loopback peer", def.allowsSTSEndpoint("http://127.0.0.1:9000"), true},
		{"default STS: elsewhere", def.allowsSTSEndpoint("https://sts.evil.example"), false},
		{"default STS: suffix look-alike", def.allowsSTSEndpoint("https://amazonaws.com.evil.example"), false},
		{"default STS: bare domain", def.allowsSTSEndpoint("https://amazonaws.com"), false},
		{"default STS: FIPS", def.allowsSTSEndpoint("https://sts-fips.us-east-1.amazonaws.com"), true},
		{"default STS: dual-stack", def.allowsSTSEndpoint("https://sts.eu-west-3.api.aws"), true},
		{"default STS: GovCloud IAM", def.allowsSTSEndpoint("https://iam.us-gov.amazonaws.com"), false},
		{"default STS: API Gateway under amazonaws.com", def.allowsSTSEndpoint("https://abc123.execute-api.eu-west-3.amazonaws.com"), false},
		{"default STS: a bucket under amazonaws.com", def.allowsSTSEndpoint("https://sts.s3.amazonaws.com"), false},
		{"default STS: a load balancer", def.allowsSTSEndpoint("https://my-elb-1.eu-west-3.elb.amazonaws.com"), false},
		{"default STS: a label before sts", def.allowsSTSEndpoint("https://evil.sts.amazonaws.com"), false},
		{"listed STS host", listed.allowsSTSEndpoint("https://sts.internal.example"), true},
		{"listed STS subdomain", listed.allowsSTSEndpoint("https://sts.x.vpce.example"), true},
		{"listed: AWS no longer by default", listed.allowsSTSEndpoint("https://sts.amazonaws.com"), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// A write naming an address the registration does not allow is a 400
// naming the field and the variable; nothing is stored.
func TestConfigRefusesAddressesNotAllowed(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t)
	for _, tc := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"sts_endpoint": "https://sts.evil.example"}, "sts_endpoint"},
		{map[string]any{"iam_endpoint": "https://iam.evil.example"}, "iam_endpoint"},
		{map[string]any{"key_store": "transit", "transit_address": "https://elsewhere.example", "transit_token": "s.x"}, "transit_address"},
		{map[string]any{"tink_kek_uri": "aws-kms://arn:aws:kms:eu-west-3:999999999999:key/x"}, "tink_kek_uri"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config", tc.data)
		if text := errText(resp, err); status(resp, err) != http.StatusBadRequest || !strings.HasPrefix(text, tc.field) || !strings.Contains(text, "AWS_HMAC_") {
			t.Errorf("%v: %d %q", tc.data, status(resp, err), text)
		}
	}
	if cfg := readConfig(t, e); cfg["key_store"] != "tink" || cfg["sts_endpoint"] != e.peer.URL {
		t.Fatalf("a refused write changed the config: %v", cfg)
	}
}

// A config written under a laxer registration stops working once the
// registration no longer allows its address: 503 naming the store.
func TestAddressNoLongerAllowed(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "config", e.storeConfig(t, "transit"))
	e.mustWrite(t, "roles/r", map[string]any{"credential_type": "session_token"})
	if resp, err := e.request(t, logical.ReadOperation, "creds/r", nil); status(resp, err) != http.StatusOK {
		t.Fatalf("before: %d %q", status(resp, err), errText(resp, err))
	}
	e.b.env.vaultAddresses = []string{"https://vault.example:8200"}
	e.b.dropConfig()
	resp, err := e.request(t, logical.ReadOperation, "creds/r", nil)
	if status(resp, err) != http.StatusServiceUnavailable || !strings.Contains(errText(resp, err), "transit") {
		t.Fatalf("after the registration changed: %d %q", status(resp, err), errText(resp, err))
	}
}

// A config read of attestation under a registration that no longer allows
// the stored address is a 503 too: the store is not asked.
func TestAttestationHonoursTheRegistration(t *testing.T) {
	e := newTestEnv(t)
	e.mustWrite(t, "config", e.storeConfig(t, "transit"))
	e.b.env.vaultAddresses = []string{"https://vault.example:8200"}
	e.b.dropConfig()
	resp, err := e.request(t, logical.ReadOperation, "config/attestation", nil)
	if status(resp, err) != http.StatusServiceUnavailable {
		t.Fatalf("attestation under a narrower registration: %d %q", status(resp, err), errText(resp, err))
	}
}

// STS and IAM calls follow no redirect: a signed request reaches only the
// endpoint the registration allows.
func TestSignedRequestsFollowNoRedirect(t *testing.T) {
	e := newTestEnv(t)
	rec := newRecorder(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+rec.addr()+"/", http.StatusFound) // a client that follows turns it into a GET
	}))
	t.Cleanup(redirect.Close)
	e.mustWrite(t, "config", with(e.baseConfig(), "sts_endpoint", redirect.URL, "skip_verification", true))
	e.mustWrite(t, "roles/session", map[string]any{"credential_type": "session_token"})
	if resp, err := e.request(t, logical.ReadOperation, "creds/session", nil); status(resp, err) == http.StatusOK {
		t.Fatal("credentials through a redirecting endpoint")
	}
	if n := rec.conns.Load(); n != 0 {
		t.Fatalf("the signed request followed the redirect %d times", n)
	}
}
