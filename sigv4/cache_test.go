package sigv4

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshmac "github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// versionedKey is a key store stand-in whose secret can be replaced under
// the same access key ID, bumping its version, and that can be made to fail.
type versionedKey struct {
	mu      sync.Mutex
	version int
	inner   awshmac.Key
	fail    error
	calls   atomic.Int64
	dates   sync.Map
}

func (k *versionedKey) AccessKeyID() string { return "AKIDEXAMPLE" }

func (k *versionedKey) KeyIdentity() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return "test/AKIDEXAMPLE/v" + string(rune('0'+k.version))
}

func (k *versionedKey) HMAC(ctx context.Context, msg []byte) ([]byte, error) {
	k.calls.Add(1)
	k.dates.Store(string(msg), true)
	k.mu.Lock()
	inner, fail := k.inner, k.fail
	k.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return inner.HMAC(ctx, msg)
}

func (k *versionedKey) rotate(secret string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.version++
	k.inner = awshmac.NewStaticKey("AKIDEXAMPLE", secret)
}

func signVanilla(t *testing.T, s *Signer, key awshmac.Key, service, region string, when time.Time) string {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
	if err := s.SignHTTP(context.Background(), key, r, EmptyStringSHA256, service, region, when); err != nil {
		t.Fatal(err)
	}
	return r.Header.Get("Authorization")
}

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func TestKeyChainFromKDate(t *testing.T) {
	key := awshmac.NewStaticKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	kDate, err := key.HMAC(context.Background(), []byte("20150830"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(kDate); got != "0138c7a6cbd60aa727b2f653a522567439dfb9f3e72b21f9b25941a42f04a7cd" {
		t.Fatalf("kDate = %s", got)
	}
	c := newKeyCache()
	for service, want := range map[string]string{
		"service": "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75",
		"sts":     "a9d028e9e96178f3ed6acfa66eff308447119de7ba1dd1dc7b666bbcb5686dfd",
	} {
		got, err := c.signingKey(context.Background(), key, "20150830", "us-east-1", service)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != want {
			t.Errorf("kSigning(%s) = %x, want %s", service, got, want)
		}
	}
}

// The key store is asked for kDate once per key and UTC day, whatever the
// regions and services signed for that day.
func TestCacheAsksStoreOncePerKeyPerDay(t *testing.T) {
	key := &versionedKey{inner: awshmac.NewStaticKey("AKIDEXAMPLE", "secret-one")}
	s := NewSigner()
	tests := []struct {
		service, region string
		when            time.Time
		wantCalls       int64
	}{
		{"sts", "us-east-1", suiteTime, 1},
		{"sts", "us-east-1", suiteTime.Add(time.Hour), 1},      // same day
		{"s3", "us-east-1", suiteTime, 1},                      // same day, other service
		{"s3", "eu-west-1", suiteTime, 1},                      // same day, other region
		{"sts", "us-east-1", suiteTime.Add(24 * time.Hour), 2}, // next day
		{"sts", "us-east-1", suiteTime.Add(-12*time.Hour - 37*time.Minute), 3},
		{"s3", "eu-west-1", suiteTime, 3},
	}
	for _, tt := range tests {
		signVanilla(t, s, key, tt.service, tt.region, tt.when)
		if got := key.calls.Load(); got != tt.wantCalls {
			t.Fatalf("after %s/%s/%s: %d key-store calls, want %d", tt.service, tt.region, tt.when, got, tt.wantCalls)
		}
		if got := s.KeyStoreCalls(); got != uint64(tt.wantCalls) {
			t.Fatalf("KeyStoreCalls = %d, want %d", got, tt.wantCalls)
		}
	}
	// Only dates were ever sent to the key store.
	key.dates.Range(func(k, _ any) bool {
		if _, err := time.Parse(shortTimeFormat, k.(string)); err != nil {
			t.Errorf("key store was asked to HMAC %q, not a date", k)
		}
		return true
	})
	s.Forget()
	signVanilla(t, s, key, "sts", "us-east-1", suiteTime)
	if got := key.calls.Load(); got != 4 {
		t.Fatalf("after Forget: %d calls, want 4", got)
	}
}

// 50 regions × 20 services on one day cost one key-store call, and each
// signature still matches a signer that derived its keys from scratch.
func TestCacheOneStoreCallAcrossRegionsAndServices(t *testing.T) {
	key := &versionedKey{inner: awshmac.NewStaticKey("AKIDEXAMPLE", "secret-one")}
	s := NewSigner()
	for r := range 50 {
		region := fmt.Sprintf("xx-test-%d", r+1)
		for v := range 20 {
			service := fmt.Sprintf("svc%d", v)
			got := signVanilla(t, s, key, service, region, suiteTime)
			want := signVanilla(t, NewSigner(), awshmac.NewStaticKey("AKIDEXAMPLE", "secret-one"), service, region, suiteTime)
			if got != want {
				t.Fatalf("%s/%s: cached signature %s, want %s", region, service, got, want)
			}
		}
	}
	if got := key.calls.Load(); got != 1 {
		t.Fatalf("1000 scopes on one day asked the key store %d times, want 1", got)
	}
}

// A new secret behind the same access key ID must never be signed with a
// key derived from the old one (aws-sdk-go-v2 issue 3350).
func TestCacheNeverServesStaleKeyAfterRotation(t *testing.T) {
	key := &versionedKey{inner: awshmac.NewStaticKey("AKIDEXAMPLE", "secret-one")}
	s := NewSigner()
	first := signVanilla(t, s, key, "sts", "us-east-1", suiteTime)
	key.rotate("secret-two")
	second := signVanilla(t, s, key, "sts", "us-east-1", suiteTime)
	if first == second {
		t.Fatal("signature unchanged after the secret changed: stale derived key served")
	}
	want := signVanilla(t, NewSigner(), awshmac.NewStaticKey("AKIDEXAMPLE", "secret-two"), "sts", "us-east-1", suiteTime)
	if second != want {
		t.Fatalf("after rotation got %s, want %s", second, want)
	}

	// Two static keys with the same access key ID are two identities too.
	a := signVanilla(t, s, awshmac.NewStaticKey("AKIDEXAMPLE", "x1"), "sts", "us-east-1", suiteTime)
	b := signVanilla(t, s, awshmac.NewStaticKey("AKIDEXAMPLE", "x2"), "sts", "us-east-1", suiteTime)
	if a == b {
		t.Fatal("two secrets under one access key ID shared a derived key")
	}
}

func TestCacheDoesNotKeepFailures(t *testing.T) {
	storeDown := errors.New("key store unavailable")
	key := &versionedKey{inner: awshmac.NewStaticKey("AKIDEXAMPLE", "secret-one"), fail: storeDown}
	s := NewSigner()
	r, _ := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
	err := s.SignHTTP(context.Background(), key, r, EmptyStringSHA256, "sts", "us-east-1", suiteTime)
	if !errors.Is(err, storeDown) {
		t.Fatalf("err = %v, want the key store's error", err)
	}
	if len(r.Header) != 0 {
		t.Fatalf("failed signing changed the request: %v", r.Header)
	}
	key.mu.Lock()
	key.fail = nil
	key.mu.Unlock()
	if got := signVanilla(t, s, key, "sts", "us-east-1", suiteTime); got == "" {
		t.Fatal("no signature after the store came back")
	}
}

func TestCacheConcurrentColdStart(t *testing.T) {
	key := &versionedKey{inner: awshmac.NewStaticKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")}
	s := NewSigner()
	want := signVanilla(t, NewSigner(), awshmac.NewStaticKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "sts", "us-east-1", suiteTime)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
			if err := s.SignHTTP(context.Background(), key, r, EmptyStringSHA256, "sts", "us-east-1", suiteTime); err != nil {
				errs <- err.Error()
				return
			}
			if got := r.Header.Get("Authorization"); got != want {
				errs <- got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := key.calls.Load(); got != 1 {
		t.Fatalf("64 concurrent signers asked the key store %d times, want 1", got)
	}
}
