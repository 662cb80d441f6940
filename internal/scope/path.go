package scope

import (
	"net/url"
	"strings"
)

// servicePath is a non-S3 path as the service reads it: only unreserved
// characters decoded, dot segments resolved, repeated slashes merged. With
// allowed_paths set, encodings that services decode in different ways (an
// encoded /, \ or .) and paths that mix empty and dot segments are refused.
// segs are its segments percent-decoded, for routing.
func servicePath(u *url.URL, limited bool) (string, []string, error) {
	raw := u.EscapedPath()
	if raw == "" {
		raw = "/"
	}
	if limited {
		lower := strings.ToLower(raw)
		for _, enc := range []string{"%2f", "%5c", "%2e", `\`, ";", "%3b"} {
			if strings.Contains(lower, enc) {
				return "", nil, denied(`url: the path has an encoded /, \ or ., or a ;, which services and their backends read in different ways, and the role limits paths (allowed_paths)`)
			}
		}
	}
	p, err := decodeUnreserved(raw)
	if err != nil {
		return "", nil, err
	}
	in := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if limited && hasEmptyAndDot(in) {
		return "", nil, denied("url: the path mixes empty and dot segments, which services resolve in different ways, and the role limits paths (allowed_paths)")
	}
	out := resolveSegments(in)
	path := "/" + strings.Join(out, "/")
	segs := make([]string, len(out))
	for i, s := range out {
		if segs[i], err = url.PathUnescape(s); err != nil {
			return "", nil, bad("url: the path is not validly percent-encoded")
		}
	}
	return path, segs, nil
}

// resolveSegments removes dot segments (RFC 3986) and empty segments but a
// trailing one, which marks a trailing slash.
func resolveSegments(in []string) []string {
	var out []string
	for i, s := range in {
		last := i == len(in)-1
		switch s {
		case ".", "":
			if last && len(out) > 0 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last && len(out) > 0 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

func hasEmptyAndDot(segs []string) bool {
	var empty, dot bool
	for i, s := range segs {
		empty = empty || (s == "" && i < len(segs)-1)
		dot = dot || s == "." || s == ".."
	}
	return empty && dot
}

// decodeUnreserved decodes %XX only where XX is an unreserved character
// (letters, digits, - _ ~), which every service reads as itself.
func decodeUnreserved(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", bad("url: the path is not validly percent-encoded")
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if isUnreserved(c) && c != '.' {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(s[i : i+3]))
		}
		i += 2
	}
	return b.String(), nil
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '~' || c == '.'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
