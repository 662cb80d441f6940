package transit

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestParseHMAC(t *testing.T) {
	mac := bytes.Repeat([]byte{7}, 32)
	b64 := base64.StdEncoding.EncodeToString(mac)
	tests := []struct {
		name    string
		in      string
		version int
		wantErr bool
	}{
		{"version 1", "vault:v1:" + b64, 1, false},
		{"two-digit version", "vault:v12:" + b64, 12, false},
		{"any version when unpinned", "vault:v345:" + b64, 0, false},
		{"other version than asked", "vault:v2:" + b64, 3, true},
		{"no prefix", b64, 1, true},
		{"version not a number", "vault:vx:" + b64, 1, true},
		{"version zero", "vault:v0:" + b64, 0, true},
		{"not base64", "vault:v1:***", 1, true},
		{"short mac", "vault:v1:" + base64.StdEncoding.EncodeToString(mac[:16]), 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHMAC(tt.in, tt.version)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !bytes.Equal(got, mac) {
				t.Fatalf("got %x", got)
			}
		})
	}
}
