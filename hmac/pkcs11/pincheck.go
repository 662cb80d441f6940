package pkcs11

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/awshmac/vault-plugin-aws-hmac/hmac"
)

// Checking a PIN in a fresh process.
//
// Login state belongs to a process and a token: once any session of this
// process is logged in to a token, C_Login with any PIN answers
// CKR_USER_ALREADY_LOGGED_IN. A PIN given to change what a running process
// uses (another key, another PIN) is therefore checked where nothing is
// logged in yet: in a new process running this same binary, which loads the
// module, finds the token and logs in once, as a fresh start would.

// pinCheckEnv selects the check mode. The parent sets it only in the
// child's environment; the request itself comes on stdin, never in
// arguments or the environment, where other users of the host can read it.
const pinCheckEnv = "AWS_HMAC_PKCS11_PIN_CHECK"

// PINCheckTimeout bounds one check: process start, module load and login.
const PINCheckTimeout = 30 * time.Second

// The check's exit statuses. 1 and 2 are left to the Go runtime (a panic
// exits 2), so that a crash is never read as an answer.
const (
	exitPINAccepted   = 0
	exitPINRefused    = 3
	exitTokenNotFound = 4
	exitModuleFailed  = 5
	exitBadRequest    = 6
)

// maxPINCheckMessage bounds what either side reads from the other.
const maxPINCheckMessage = 64 << 10

// maxPINLength is more than any token takes (PKCS#11 PINs are a few dozen
// bytes at most): a longer one is refused without asking the token.
const maxPINLength = 4096

var (
	// ErrTokenNotFound is wrapped by CheckPIN when no single token matches
	// the configured label and serial.
	ErrTokenNotFound = errors.New("pkcs11: token not found")
	// ErrModuleFailed is wrapped by CheckPIN when the module could not be
	// loaded or used, or the check did not finish.
	ErrModuleFailed = errors.New("pkcs11: module failed")
)

// servesPINCheck records that this binary's main called ServePINCheck, so a
// copy of it started in check mode answers the check.
var servesPINCheck atomic.Bool

// ServePINCheck is the first call of a main (or TestMain) whose binary
// checks PINs in a fresh process for CheckPIN. Outside check mode it
// returns false and the program goes on. In check mode, started by
// CheckPIN, it reads the request from stdin, logs in once and ends the
// process with the outcome as its exit status: it never returns.
func ServePINCheck() bool {
	if os.Getenv(pinCheckEnv) != "1" {
		servesPINCheck.Store(true)
		return false
	}
	os.Exit(servePINCheck(os.Stdin, os.Stdout))
	return true
}

// pinCheckRequest is what the parent sends on the child's stdin.
type pinCheckRequest struct {
	Module      string `json:"module"`
	TokenLabel  string `json:"token_label"`
	TokenSerial string `json:"token_serial"`
	PIN         string `json:"pin"`
}

// pinCheckReport is the child's one line on stdout. Reason is built from
// the module path, the token's label and PKCS#11 codes: never the PIN.
type pinCheckReport struct {
	Status int    `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func servePINCheck(in io.Reader, out io.Writer) int {
	var req pinCheckRequest
	status, reason := exitBadRequest, "pkcs11: unreadable PIN check request"
	if err := json.NewDecoder(io.LimitReader(in, maxPINCheckMessage)).Decode(&req); err == nil {
		status, reason = loginOnce(Config{Module: req.Module, TokenLabel: req.TokenLabel, TokenSerial: req.TokenSerial, PIN: req.PIN}, false)
	}
	_ = json.NewEncoder(out).Encode(pinCheckReport{Status: status, Reason: reason})
	return status
}

// loginOnce loads the module, finds the token and logs in to it in a
// session of its own, then closes that session without C_Logout (which
// would log out every session of the process). CKR_USER_ALREADY_LOGGED_IN
// proves nothing about the PIN: it is accepted only when trustLoggedIn.
func loginOnce(cfg Config, trustLoggedIn bool) (int, string) {
	lib, err := loadLibrary(cfg.Module)
	if err != nil {
		return exitModuleFailed, err.Error()
	}
	defer lib.release()
	k := &Key{cfg: cfg, lib: lib}
	if err := k.findSlot(); err != nil {
		if codeOf(err) != 0 { // the module failed to list its slots
			return exitModuleFailed, err.Error()
		}
		return exitTokenNotFound, err.Error()
	}
	if info, err := lib.ctx.GetTokenInfo(k.slot); err == nil {
		if why, stop := pinTryRefusal(info.Flags); stop {
			return exitPINRefused, why
		}
	}
	s, err := lib.ctx.OpenSession(k.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return exitModuleFailed, k.storeError("open session", err).Error()
	}
	defer func() { _ = lib.ctx.CloseSession(s) }()
	err = lib.ctx.Login(s, pkcs11.CKU_USER, cfg.PIN)
	switch {
	case err == nil:
		return exitPINAccepted, ""
	case isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) && trustLoggedIn:
		return exitPINAccepted, ""
	case isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		return exitModuleFailed, fmt.Sprintf("pkcs11: token %q reports a login in a process that made none; this module cannot have a PIN checked", cfg.TokenLabel)
	}
	if why, ok := pinRefusals[codeOf(err)]; ok {
		return exitPINRefused, fmt.Sprintf("%s (%v)", why, err)
	}
	return exitModuleFailed, k.storeError("login", err).Error()
}

// pinTryRefusal: a PIN is not tried on a token whose user PIN is locked, or
// that says one more wrong PIN would lock it (a check cannot know the PIN is
// right before trying it); logging in with the token's own tools resets the
// count.
func pinTryRefusal(flags uint) (string, bool) {
	switch {
	case flags&pkcs11.CKF_USER_PIN_LOCKED != 0:
		return "the user PIN is locked (CKF_USER_PIN_LOCKED); the PIN was not tried: the token's security officer must unlock it", true
	case flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0:
		return "one more wrong PIN would lock the user PIN (CKF_USER_PIN_FINAL_TRY); the PIN was not tried: log in once with the right PIN using the token's own tools, which resets the count", true
	}
	return "", false
}

// CheckPIN asks the token whether cfg.PIN is its user PIN, as it would be
// asked on a fresh start: in a new process running this binary, whose
// module has never logged in, so that a login this process holds does not
// answer for it. A refused PIN wraps hmac.ErrAuth; a token that is not
// there wraps ErrTokenNotFound; anything else wraps ErrModuleFailed. The
// check takes at most PINCheckTimeout. cfg's key fields are not used.
//
// It needs the binary's main to call ServePINCheck first. A binary that
// does not (a program using this package as a library) is checked in this
// process instead, which cannot detect a wrong PIN while this process is
// logged in to the token (an open Key, or other code using the module):
// the token then accepts any PIN.
func CheckPIN(ctx context.Context, cfg Config) error {
	switch {
	case cfg.Module == "":
		return errors.New("pkcs11: no module (library path)")
	case cfg.TokenLabel == "" && cfg.TokenSerial == "":
		return errors.New("pkcs11: no token label or serial")
	case len(cfg.PIN) > maxPINLength:
		return pinCheckError(cfg, exitPINRefused, fmt.Sprintf("wrong PIN (longer than %d bytes)", maxPINLength))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !servesPINCheck.Load() {
		status, reason := loginOnce(cfg, true)
		return pinCheckError(cfg, status, reason)
	}
	status, reason := checkInChild(ctx, cfg)
	return pinCheckError(cfg, status, reason)
}

// checkInChild runs the check in a copy of this binary. The child inherits
// this process's environment (a module's configuration, such as
// SOFTHSM2_CONF, comes from it) and gets the request on stdin.
func checkInChild(ctx context.Context, cfg Config) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, PINCheckTimeout)
	defer cancel()
	req, err := json.Marshal(pinCheckRequest{Module: cfg.Module, TokenLabel: cfg.TokenLabel, TokenSerial: cfg.TokenSerial, PIN: cfg.PIN})
	if err != nil {
		return exitModuleFailed, "pkcs11: PIN check request: " + err.Error()
	}
	defer clear(req)
	exe, err := selfExecutable()
	if err != nil {
		return exitModuleFailed, "pkcs11: cannot find this program's binary to check the PIN: " + err.Error()
	}
	out := &limitedBuffer{max: maxPINCheckMessage}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(withoutPINCheckEnv(os.Environ()), pinCheckEnv+"=1")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(req), out // stderr: /dev/null
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return exitModuleFailed, fmt.Sprintf("pkcs11: the PIN check on token %q did not finish within %s", cfg.TokenLabel, PINCheckTimeout)
	}
	var report pinCheckReport
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &report); err != nil || cmd.ProcessState == nil || report.Status != cmd.ProcessState.ExitCode() {
		return exitModuleFailed, fmt.Sprintf("pkcs11: the PIN check process for module %s failed (%v)", cfg.Module, runErr)
	}
	return report.Status, report.Reason
}

// pinCheckError is the error CheckPIN returns for a check's outcome.
func pinCheckError(cfg Config, status int, reason string) error {
	if cfg.PIN != "" && strings.Contains(reason, cfg.PIN) {
		reason = "the report named the PIN and is withheld" // never expected: reasons are built without it
	}
	switch status {
	case exitPINAccepted:
		return nil
	case exitPINRefused:
		return fmt.Errorf("pkcs11: login to token %q: %s: %w", cfg.TokenLabel, reason, hmac.ErrAuth)
	case exitTokenNotFound:
		return &checkError{reason: reason, kind: ErrTokenNotFound}
	}
	return &checkError{reason: reason, kind: ErrModuleFailed}
}

// checkError reads as the child's reason and matches its kind.
type checkError struct {
	reason string
	kind   error
}

func (e *checkError) Error() string { return e.reason }
func (e *checkError) Unwrap() error { return e.kind }

// selfExecutable is this process's binary. On Linux /proc/self/exe is the
// file the process runs even after it was replaced or removed on disk (an
// upgrade in place), where the path os.Executable gives would run another.
func selfExecutable() (string, error) {
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/proc/self/exe"); err == nil {
			return "/proc/self/exe", nil
		}
	}
	return os.Executable()
}

func withoutPINCheckEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, pinCheckEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// limitedBuffer keeps the first max bytes written and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
