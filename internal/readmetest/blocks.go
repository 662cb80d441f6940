// Package readmetest runs the README's shell examples against real
// components, so that an example that stops working fails the build.
//
// Every ```sh block in README.md is run, in order, in one bash session
// (set -euo pipefail), unless the line before it marks it:
//
//	<!-- example: inputs -->        values the reader fills in; the test supplies its own
//	<!-- example: not run: WHY -->  cannot run here, and says why
//
// A ```hcl block marked <!-- example: policy NAME --> is a Vault policy the
// README recommends; the tests check what it allows with `vault token
// capabilities`.
package readmetest

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Block is one fenced code block of the README.
type Block struct {
	Line   int    // line of the opening fence, 1-based
	Lang   string // the fence's info string
	Mark   string // the marker comment before it, without <!-- example: -->
	Source string
}

var markRE = regexp.MustCompile(`^<!--\s*example:\s*(.*?)\s*-->\s*$`)

// Parse returns the README's fenced blocks with their markers.
func Parse(r io.Reader) ([]Block, error) {
	var (
		blocks  []Block
		cur     *Block
		body    strings.Builder
		lastRaw string
		line    int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &Block{Line: line, Lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}
			if m := markRE.FindStringSubmatch(strings.TrimSpace(lastRaw)); m != nil {
				cur.Mark = m[1]
			}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.Source = dedent(body.String())
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(text + "\n")
		}
		if trimmed != "" {
			lastRaw = text
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md:%d: code block never closed", cur.Line)
	}
	return blocks, sc.Err()
}

// dedent removes the indentation common to every non-empty line, so blocks
// inside list items run as written.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	min := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if min < 0 || n < min {
			min = n
		}
	}
	if min <= 0 {
		return s
	}
	for i, l := range lines {
		if len(l) >= min {
			lines[i] = l[min:]
		}
	}
	return strings.Join(lines, "\n")
}

// Runnable reports whether a block is run by the tests, and an error for a
// block whose marker is malformed (a "not run" without a reason).
func (b Block) Runnable() (bool, error) {
	if b.Lang != "sh" {
		return false, nil
	}
	switch {
	case b.Mark == "":
		return true, nil
	case b.Mark == "inputs":
		return false, nil
	case strings.HasPrefix(b.Mark, "not run:"):
		if len(strings.TrimSpace(strings.TrimPrefix(b.Mark, "not run:"))) < 10 {
			return false, fmt.Errorf("README.md:%d: a block not run must say why", b.Line)
		}
		return false, nil
	}
	return false, fmt.Errorf("README.md:%d: unknown example marker %q", b.Line, b.Mark)
}

// Policy returns the policy name of a block marked as a recommended policy.
func (b Block) Policy() (string, bool) {
	name, ok := strings.CutPrefix(b.Mark, "policy ")
	return strings.TrimSpace(name), ok && b.Lang == "hcl"
}

var assignRE = regexp.MustCompile(`(?m)^(?:export\s+)?([A-Z][A-Z0-9_]*)=`)

// InputNames lists the variables an inputs block asks the reader for.
func (b Block) InputNames() []string {
	var names []string
	for _, m := range assignRE.FindAllStringSubmatch(b.Source, -1) {
		names = append(names, m[1])
	}
	return names
}
