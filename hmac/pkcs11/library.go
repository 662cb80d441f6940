package pkcs11

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// library is a loaded PKCS#11 module, initialised once however many keys
// use it, and finalised when the last one closes.
type library struct {
	path string
	ctx  *pkcs11.Ctx
	refs int
	// owned is false when the module was already initialised by other code
	// in the process; then that code, not this package, finalises it.
	owned bool
}

var (
	librariesMu sync.Mutex
	libraries   = map[string]*library{}
)

func loadLibrary(path string) (*library, error) {
	librariesMu.Lock()
	defer librariesMu.Unlock()
	if lib, ok := libraries[path]; ok {
		lib.refs++
		return lib, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s: the file is missing on this Vault node, not readable by the Vault user, or not a PKCS#11 library for this platform", path)
	}
	owned := true
	if err := ctx.Initialize(); err != nil {
		if !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("pkcs11: initialise %s: %w%s", path, err, configHint(path))
		}
		owned = false
	}
	lib := &library{path: path, ctx: ctx, refs: 1, owned: owned}
	libraries[path] = lib
	return lib, nil
}

func (l *library) release() {
	librariesMu.Lock()
	defer librariesMu.Unlock()
	l.refs--
	if l.refs > 0 {
		return
	}
	delete(libraries, l.path)
	if l.owned {
		_ = l.ctx.Finalize()
	}
	l.ctx.Destroy()
}

func isCode(err error, code uint) bool {
	e, ok := err.(pkcs11.Error)
	return ok && uint(e) == code
}

// reinitialize finalises and initialises the module again: after a token
// outage some modules (SoftHSM2 among them) only see the token again then.
// Sessions of every key on the module end; each key reconnects on its next call.
func (l *library) reinitialize() error {
	librariesMu.Lock()
	defer librariesMu.Unlock()
	if !l.owned {
		return fmt.Errorf("pkcs11: module %s was initialised by other code; not reinitialising it", l.path)
	}
	_ = l.ctx.Finalize()
	if err := l.ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return fmt.Errorf("pkcs11: initialise %s: %w", l.path, err)
	}
	return nil
}

// configHint says which registration setting fixes a module that starts but
// cannot find its configuration or tokens. SoftHSM2 reads SOFTHSM2_CONF, and
// the plugin process sees only the environment its registration gives it.
func configHint(module string) string {
	if strings.Contains(strings.ToLower(filepath.Base(module)), "softhsm") {
		return "; SoftHSM2 reads its configuration (and so its token directory) from SOFTHSM2_CONF: register the plugin with `vault plugin register -env SOFTHSM2_CONF=/path/to/softhsm2.conf ...`"
	}
	return "; if the module needs a configuration file or an environment variable, give it to the plugin with `vault plugin register -env NAME=value ...`"
}
