package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

var writeOnlyFields = []string{"secret_key", "transit_token", "pkcs11_pin", "tpm_password", "tink_vault_token"}

func marker(field string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "wrongtype-" + field + "-" + hex.EncodeToString(b)
}

// putJSON writes raw JSON to a path, as any HTTP client may.
func (w *world) putJSON(t *testing.T, path string, body any) (int, string) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, w.vault.Addr+"/v1/"+path, bytes.NewReader(raw))
	req.Header.Set("X-Vault-Token", w.vault.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// runWrongTypes sends every write-only field as every wrong JSON type: each
// is a 400 naming the field, and the value is in no response; the string
// forms join the leak scan of storage, the server log and the audit log.
func (w *world) runWrongTypes(t *testing.T) {
	for _, field := range writeOnlyFields {
		m := marker(field)
		number := int64(700000000000) + int64(len(w.secretForms))*7919
		w.secretForms = append(w.secretForms, m)
		for _, value := range []any{[]any{m}, map[string]any{"v": m}, []any{[]any{m}}, number, true} {
			code, out := w.putJSON(t, mount+"/config", map[string]any{field: value, "access_key": w.minio.AccessKey})
			if code != http.StatusBadRequest || !strings.Contains(out, field) {
				t.Fatalf("%s as %T: %d %s, want a 400 naming the field", field, value, code, out)
			}
			if strings.Contains(out, m) || strings.Contains(out, fmt.Sprint(number)) {
				t.Fatalf("%s as %T: the response quotes the value: %s", field, value, out)
			}
		}
		// Numbers are not HMACed in Vault's own audit log, so they are
		// searched for where the plugin could have put them: the server log.
		log, _ := os.ReadFile(w.vault.Process.LogPath)
		if bytes.Contains(log, []byte(fmt.Sprint(number))) {
			t.Fatalf("the server log quotes %s's value", field)
		}
	}
}

// runAllowLists registers the plugin a second time without the allow-list
// variables: a library outside the list, /dev/null as a TPM, a simulator
// not listed, a cleartext KEK and plain http to another host are refused
// with 400, and the plugin process neither maps the library nor opens the
// device.
func (w *world) runAllowLists(t *testing.T) {
	const strict = "vault-plugin-aws-hmac-strict"
	w.vault.RegisterPlugin(t, pluginBinary, strict, w.hsm.Env()...)
	w.cli(t, "secrets", "enable", "-path=aws-hmac-strict", strict)
	pids := w.pidsOf(strict)
	if len(pids) != 1 {
		t.Fatalf("strict plugin processes: %v", pids)
	}
	pwn := filepath.Join(t.TempDir(), "libpwn.so")
	lib, err := os.ReadFile(w.hsm.Module)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwn, lib, 0o755); err != nil {
		t.Fatal(err)
	}
	nullsBefore := fdsTo(t, pids[0], "/dev/null")
	base := map[string]any{"access_key": w.minio.AccessKey, "secret_key": w.minio.SecretKey, "sts_endpoint": w.peer.URL}
	for _, tt := range []struct {
		field string
		data  map[string]any
	}{
		{"pkcs11_module", map[string]any{"key_store": "pkcs11", "pkcs11_module": pwn, "pkcs11_token_label": w.hsm.Label, "pkcs11_pin": w.hsm.PIN}},
		{"pkcs11_module", map[string]any{"key_store": "pkcs11", "pkcs11_module": filepath.Dir(w.hsm.Module) + "/../softhsm/" + filepath.Base(w.hsm.Module), "pkcs11_token_label": w.hsm.Label, "pkcs11_pin": w.hsm.PIN}},
		{"tpm_device", map[string]any{"key_store": "tpm", "tpm_device": "/dev/null"}},
		{"tpm_device", map[string]any{"key_store": "tpm", "tpm_device": "tcp://" + w.tpm.Addr}},
		{"tink_kek_uri", map[string]any{"key_store": "tink", "tink_kek_uri": "insecure-local-kek://" + filepath.Join(t.TempDir(), "kek.json")}},
		{"sts_endpoint", map[string]any{"key_store": "transit", "transit_address": w.vault.Addr, "transit_token": w.storeToken, "sts_endpoint": "http://sts.example.com"}},
		{"transit_address", map[string]any{"key_store": "transit", "transit_address": "http://vault.example.com:8200", "transit_token": w.storeToken}},
	} {
		data := map[string]any{}
		for k, v := range base {
			data[k] = v
		}
		for k, v := range tt.data {
			data[k] = v
		}
		_, err := w.vault.Client.Logical().Write("aws-hmac-strict/config", data)
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || !strings.Contains(strings.Join(re.Errors, " "), tt.field) {
			t.Fatalf("%s %v: %v, want a 400 naming %s", tt.field, tt.data[tt.field], err, tt.field)
		}
	}
	maps, err := os.ReadFile(filepath.Join("/proc", pids[0], "maps"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(maps, []byte("libpwn")) || bytes.Contains(maps, []byte("libsofthsm2")) {
		t.Fatal("the plugin loaded a PKCS#11 library its registration does not allow")
	}
	if after := fdsTo(t, pids[0], "/dev/null"); !slices.Equal(after, nullsBefore) {
		t.Fatalf("the plugin opened /dev/null: descriptors %v, before %v", after, nullsBefore)
	}
	if _, err := w.vault.Client.Logical().Read("aws-hmac-strict/config"); err != nil {
		t.Fatal(err)
	}
	if err := w.vault.Client.Sys().Unmount("aws-hmac-strict"); err != nil {
		t.Fatal(err)
	}
}

// fdsTo lists a process's descriptors that point at target.
func fdsTo(t *testing.T, pid, target string) []string {
	t.Helper()
	dir := filepath.Join("/proc", pid, "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range entries {
		if dest, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && dest == target {
			fds = append(fds, e.Name())
		}
	}
	return fds
}
