// Package keytest holds the checks every key store must pass.
package keytest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/sigv4"
)

// The official suite's credentials, date and results.
const (
	AccessKeyID = "AKIDEXAMPLE"
	Secret      = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	Date        = "20150830"
	KDate       = "0138c7a6cbd60aa727b2f653a522567439dfb9f3e72b21f9b25941a42f04a7cd"
	// get-vanilla's header signature.
	GetVanillaSignature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
)

// CheckSuite checks kDate for the suite's date and signs get-vanilla through
// the signer, comparing with the official signature.
func CheckSuite(t testing.TB, key hmac.Key) {
	t.Helper()
	ctx := context.Background()
	kDate, err := key.HMAC(ctx, []byte(Date))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(kDate) != KDate {
		t.Fatalf("kDate = %x, want %s", kDate, KDate)
	}
	r, _ := http.NewRequest(http.MethodGet, "https://example.amazonaws.com/", nil)
	when := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	if err := sigv4.NewSigner().SignHTTP(ctx, key, r, sigv4.EmptyStringSHA256, "service", "us-east-1", when); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get("Authorization"); !strings.HasSuffix(got, "Signature="+GetVanillaSignature) {
		t.Fatalf("get-vanilla signed as %q", got)
	}
}

// Hammer runs goroutines × perGoroutine HMACs concurrently and checks each.
func Hammer(t testing.TB, key hmac.Key, goroutines, perGoroutine int) {
	t.Helper()
	want, _ := hex.DecodeString(KDate)
	other := []byte(strings.Repeat("long message ", 200)) // above TPM2B_MAX_BUFFER
	var wantOther []byte
	if mac, err := key.HMAC(context.Background(), other); err == nil {
		wantOther = mac
	} else {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				msg, w := []byte(Date), want
				if (g+i)%50 == 0 {
					msg, w = other, wantOther
				}
				mac, err := key.HMAC(context.Background(), msg)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(mac, w) {
					errs <- errWrong
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var errWrong = errors.New("wrong HMAC under concurrency")

// NoSecretIn fails if blob contains the secret or K, raw, hex or base64.
func NoSecretIn(t testing.TB, what string, blob []byte) {
	t.Helper()
	for _, s := range Forms(Secret) {
		if bytes.Contains(blob, []byte(s)) {
			t.Fatalf("%s holds the secret or K", what)
		}
	}
}

// Forms returns a secret's raw, K, hex and base64 forms, to search for.
func Forms(secret string) []string {
	var out []string
	for _, s := range []string{secret, "AWS4" + secret} {
		out = append(out, s, hex.EncodeToString([]byte(s)), strings.ToUpper(hex.EncodeToString([]byte(s))),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	return out
}

// Closer is a key store's key: it HMACs and releases its resources.
type Closer interface {
	hmac.Key
	Close() error
}

// CheckCloseDuringHMAC closes key while goroutines HMAC with it: every call
// must return a correct kDate or an error, never panic, race or hang (run
// it under -race). After Close, calls fail.
func CheckCloseDuringHMAC(t testing.TB, key Closer) {
	t.Helper()
	want, _ := hex.DecodeString(KDate)
	var wg sync.WaitGroup
	bad := make(chan string, 16)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				mac, err := key.HMAC(context.Background(), []byte(Date))
				if err == nil && !bytes.Equal(mac, want) {
					select {
					case bad <- "a wrong kDate during Close":
					default:
					}
				}
			}
		}()
	}
	if err := key.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(bad)
	for msg := range bad {
		t.Error(msg)
	}
	if _, err := key.HMAC(context.Background(), []byte(Date)); err == nil {
		t.Error("HMAC succeeded after Close")
	}
}
