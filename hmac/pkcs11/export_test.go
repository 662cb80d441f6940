package pkcs11

// CheckPINInProcess is CheckPIN as a binary that does not serve the check
// mode runs it, for the test that shows what it cannot detect.
func CheckPINInProcess(cfg Config) error {
	status, reason := loginOnce(cfg, true)
	return pinCheckError(cfg, status, reason)
}

// ServePINCheckFrom is the check mode's body, run in the test's process.
var ServePINCheckFrom = servePINCheck

// PINTryRefusal is the decision not to try a PIN, from C_GetTokenInfo's flags.
var PINTryRefusal = pinTryRefusal
