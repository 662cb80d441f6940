// Package version is the version a binary of this module was built as: the
// module version when built from a tagged module, else the version control
// stamp Go embeds (a pseudo-version, +dirty when the tree was modified), or
// what a release build sets with -ldflags. Vault compares the plugin's
// reported version with the one it was registered under, character for
// character, so the value is always canonical semantic versioning with a
// leading "v".
package version

import (
	"errors"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
)

// override is set by release builds:
//
//	go build -ldflags "-X github.com/awshmac/vault-plugin-aws-hmac/internal/version.override=v1.2.3"
var override string

// Unknown is reported when the build recorded nothing: a build with
// -buildvcs=false outside a tagged module. It sorts below every release.
const Unknown = "v0.0.0-unknown"

// semverRE is SemVer 2.0.0 with a leading "v": what Vault's catalog keeps
// unchanged when it canonicalises a version.
var semverRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?` +
	`(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// errOverride is returned for a release version that is not semantic
// versioning: Vault would refuse to register the binary under it.
var errOverride = errors.New("the version set at build time is not a semantic version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])")

// Get returns the binary's version, or an error when a release build set
// one that is not a semantic version.
func Get() (string, error) {
	info, _ := debug.ReadBuildInfo()
	return resolve(override, info)
}

// String is Get without the error: the version, or Unknown.
func String() string {
	v, err := Get()
	if err != nil {
		return Unknown
	}
	return v
}

// Valid reports whether v is a canonical semantic version with a leading "v".
func Valid(v string) bool { return len(v) <= 256 && semverRE.MatchString(v) }

func resolve(set string, info *debug.BuildInfo) (string, error) {
	if set != "" {
		if !strings.HasPrefix(set, "v") {
			set = "v" + set
		}
		if !Valid(set) {
			return "", errOverride
		}
		return set, nil
	}
	if info == nil {
		return Unknown, nil
	}
	if v := info.Main.Version; v != "" && v != "(devel)" && Valid(v) {
		return v, nil
	}
	if v := fromVCS(info.Settings); v != "" {
		return v, nil
	}
	return Unknown, nil
}

// fromVCS builds the pseudo-version Go itself would stamp from the vcs.*
// settings, for toolchains that record those but not the module version.
func fromVCS(settings []debug.BuildSetting) string {
	var rev, stamp string
	modified := false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			stamp = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	at, err := time.Parse(time.RFC3339, stamp)
	if len(rev) < 12 || err != nil {
		return ""
	}
	v := "v0.0.0-" + at.UTC().Format("20060102150405") + "-" + rev[:12]
	if modified {
		v += "+dirty"
	}
	if !Valid(v) {
		return ""
	}
	return v
}
