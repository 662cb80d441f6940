package readmetest

import (
	"slices"
	"strings"
	"testing"
)

const sample = "# T\n\n" +
	"<!-- example: inputs -->\n```sh\nFOO=1   # yours\nexport BAR=2\n```\n\n" +
	"- a list item:\n\n  ```sh\n  echo one\n    echo two\n  ```\n\n" +
	"<!-- example: not run: needs a real AWS account -->\n```sh\naws s3 ls\n```\n\n" +
	"```hcl\npath \"x\" {}\n```\n\n" +
	"```sh\nvault policy write p - <<'EOF'\npath \"a\" { capabilities = [\"read\"] }\nEOF\n```\n"

func TestParse(t *testing.T) {
	blocks, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 5 {
		t.Fatalf("%d blocks, want 5", len(blocks))
	}
	if blocks[0].Mark != "inputs" || !slices.Equal(blocks[0].InputNames(), []string{"FOO", "BAR"}) {
		t.Errorf("inputs block: %+v %v", blocks[0], blocks[0].InputNames())
	}
	if blocks[1].Source != "echo one\n  echo two\n" {
		t.Errorf("list item block not dedented: %q", blocks[1].Source)
	}
	var runnable []int
	for i, b := range blocks {
		ok, err := b.Runnable()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			runnable = append(runnable, i)
		}
	}
	if !slices.Equal(runnable, []int{1, 4}) {
		t.Errorf("runnable blocks %v, want [1 4]", runnable)
	}
	if p := Policies(blocks); len(p) != 1 || !strings.Contains(p["p"], `path "a"`) {
		t.Errorf("policies %v", p)
	}
}

func TestMarkersMustSayWhy(t *testing.T) {
	for _, mark := range []string{"not run:", "not run: later", "skip", "inputs please"} {
		b := Block{Lang: "sh", Mark: mark, Line: 7}
		if _, err := b.Runnable(); err == nil {
			t.Errorf("marker %q accepted", mark)
		}
	}
	if _, err := Parse(strings.NewReader("```sh\necho\n")); err == nil {
		t.Error("an unclosed block was accepted")
	}
}
