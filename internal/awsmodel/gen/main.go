// Command gen writes models.txt, the compact table of AWS service models the
// signing scope reads operations from.
//
// Its source is AWS's published service models in the JSON form botocore
// and aws-sdk-go share (<dir>/<service>/<version>/api-2.json, or
// service-2.json in botocore's data/). The default source is the
// aws-sdk-go v1 module pinned below: the Go module proxy serves it, with a
// checksum, on every machine that builds this project, and its models
// (last updated 2024-07-30) are 19 months newer than the botocore Debian
// packages (1.29.27, December 2022). npm's aws-sdk v2 carries later ones,
// but minified: without deprecation marks, and it needs npm.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Source is the module whose models/apis the table is made from.
const Source = "github.com/aws/aws-sdk-go@v1.55.8"

// SourceDate is when Source's models were last updated (v1.55.5; later
// releases changed no model).
const SourceDate = "2024-07-30"

func main() {
	src := flag.String("src", "", "directory of service models (<service>/<version>/api-2.json); default: "+Source+"'s models/apis")
	out := flag.String("out", "models.txt", "file to write; - for standard output")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	label := Source + " models/apis (models of " + SourceDate + ")"
	if src == "" {
		dir, err := moduleDir(Source)
		if err != nil {
			return err
		}
		src = filepath.Join(dir, "models", "apis")
	} else {
		label = "service models in " + filepath.Base(src)
	}
	models, err := readModels(src)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	write(bw, label, models)
	return bw.Flush()
}

// moduleDir downloads the module through the Go module proxy (or finds it
// in the module cache) and returns its directory.
func moduleDir(mod string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(b, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory", mod)
	}
	return info.Dir, nil
}
