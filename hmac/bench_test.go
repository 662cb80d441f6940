package hmac_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tink"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/tpm"
	"github.com/awshmac/vault-plugin-aws-hmac/hmac/transit"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/keytest"
	"github.com/awshmac/vault-plugin-aws-hmac/internal/testenv"
)

// BenchmarkKeyStoreHMAC measures HMAC operations per second of each key
// store, against the real component, at 1 and 8 goroutines, beside the
// software key as the reference.
func BenchmarkKeyStoreHMAC(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) hmac.Key
	}{
		{"software", func(b *testing.B) hmac.Key { return hmac.NewStaticKey(keytest.AccessKeyID, keytest.Secret) }},
		{"transit", func(b *testing.B) hmac.Key {
			v := testenv.StartVault(b, testenv.VaultOptions{})
			if err := v.Client.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
				b.Fatal(err)
			}
			k, err := transit.Import(context.Background(), transit.Config{Client: v.Client, Name: "aws"}, keytest.AccessKeyID, keytest.Secret)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}},
		{"pkcs11-softhsm2", func(b *testing.B) hmac.Key {
			hsm := testenv.NewSoftHSM(b, "bench")
			k, err := pkcs11.Import(context.Background(), pkcs11.Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN, KeyLabel: "aws"}, keytest.AccessKeyID, keytest.Secret)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { k.Close() })
			return k
		}},
		{"tpm-swtpm", func(b *testing.B) hmac.Key {
			sw := testenv.StartSWTPM(b)
			k, err := tpm.Import(context.Background(), tpm.Config{Device: "tcp://" + sw.Addr}, keytest.AccessKeyID, keytest.Secret)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}},
		{"tink-local-kek", func(b *testing.B) hmac.Key {
			path := filepath.Join(b.TempDir(), "kek.json")
			if err := tink.NewLocalKEK(path); err != nil {
				b.Fatal(err)
			}
			k, err := tink.Import(context.Background(), tink.Config{KEKURI: tink.LocalKEKScheme + path}, keytest.AccessKeyID, keytest.Secret)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			key := s.open(b)
			for _, goroutines := range []int{1, 8} {
				b.Run(map[int]string{1: "1-goroutine", 8: "8-goroutines"}[goroutines], func(b *testing.B) {
					msg := []byte(keytest.Date)
					var next atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					for g := 0; g < goroutines; g++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for next.Add(1) <= int64(b.N) {
								if _, err := key.HMAC(context.Background(), msg); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hmac/s")
				})
			}
		})
	}
}
