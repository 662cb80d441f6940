package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	stamp := []debug.BuildSetting{{Key: "vcs.revision", Value: "0b14981a602395bed2ca6d32d90432d087df01fe"},
		{Key: "vcs.time", Value: "2026-11-30T15:41:05Z"}, {Key: "vcs.modified", Value: "true"}}
	main := func(v string, s ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/awshmac/vault-plugin-aws-hmac", Version: v}, Settings: s}
	}
	for _, c := range []struct {
		name, set string
		info      *debug.BuildInfo
		want      string
	}{
		{"release override wins", "v1.4.0", main("v0.0.0-20261130154105-0b14981a6023"), "v1.4.0"},
		{"override gets its v", "1.4.0-rc.1", nil, "v1.4.0-rc.1"},
		{"tagged module", "", main("v1.3.2"), "v1.3.2"},
		{"Go's VCS stamp", "", main("v0.0.0-20261130154105-0b14981a6023+dirty"), "v0.0.0-20261130154105-0b14981a6023+dirty"},
		{"stamp after a tag", "", main("v1.3.3-0.20261130154105-0b14981a6023"), "v1.3.3-0.20261130154105-0b14981a6023"},
		{"vcs settings only", "", main("(devel)", stamp...), "v0.0.0-20261130154105-0b14981a6023+dirty"},
		{"vcs settings, clean", "", main("(devel)", stamp[0], stamp[1], debug.BuildSetting{Key: "vcs.modified", Value: "false"}),
			"v0.0.0-20261130154105-0b14981a6023"},
		{"short revision", "", main("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: "abc"}, stamp[1]), Unknown},
		{"nothing recorded", "", main("(devel)"), Unknown},
		{"no build info", "", nil, Unknown},
	} {
		got, err := resolve(c.set, c.info)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
		if !Valid(got) {
			t.Errorf("%s: %q is not canonical semver", c.name, got)
		}
	}
}

// A release version Vault would refuse (or canonicalise into another
// string, so the reported one would not match) is an error, not reported.
func TestResolveRefusesABadOverride(t *testing.T) {
	for _, set := range []string{"v1.2", "latest", "v1.2.3 ", "v01.2.3", "v1.2.3-01", "v1.2.3+", "v1.2.3-a..b", "v1.2.3\n"} {
		if got, err := resolve(set, nil); err == nil {
			t.Errorf("override %q accepted as %q", set, got)
		}
	}
}
