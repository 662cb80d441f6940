package awshmac

import (
	"os"
	"testing"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac/pkcs11"
)

// The test binary serves the PKCS#11 PIN check mode, as the plugin's main
// does, so config writes in these tests have PINs checked by a copy of it.
func TestMain(m *testing.M) {
	if pkcs11.ServePINCheck() {
		return
	}
	os.Exit(m.Run())
}
