package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// model is the part of a service model the scope needs.
type model struct {
	name     string
	Metadata struct {
		Protocol           string          `json:"protocol"`
		Protocols          []string        `json:"protocols"`
		TargetPrefix       string          `json:"targetPrefix"`
		SigningName        string          `json:"signingName"`
		EndpointPrefix     string          `json:"endpointPrefix"`
		AWSQueryCompatible json.RawMessage `json:"awsQueryCompatible"`
	} `json:"metadata"`
	Operations map[string]struct {
		HTTP struct {
			Method     string `json:"method"`
			RequestURI string `json:"requestUri"`
		} `json:"http"`
		Input      *struct{ Shape string } `json:"input"`
		Deprecated bool                    `json:"deprecated"`
		Endpoint   *struct {
			HostPrefix string `json:"hostPrefix"`
		} `json:"endpoint"`
	} `json:"operations"`
	Shapes map[string]shape `json:"shapes"`
}

type shape struct {
	Type     string            `json:"type"`
	Required []string          `json:"required"`
	Members  map[string]member `json:"members"`
}

type member struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
}

// readModels reads the newest version of every service under dir.
func readModels(dir string) ([]*model, error) {
	services, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*model
	for _, s := range services {
		if !s.IsDir() {
			continue
		}
		file := newestModel(filepath.Join(dir, s.Name()))
		if file == "" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		m := &model{name: s.Name()}
		if err := json.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no service models under %s", dir)
	}
	return out, nil
}

// newestModel is the model file of the latest API version in a service's
// directory (versions are dates, so they sort as strings).
func newestModel(svcDir string) string {
	versions, _ := os.ReadDir(svcDir)
	sort.Slice(versions, func(i, j int) bool { return versions[i].Name() > versions[j].Name() })
	for _, v := range versions {
		for _, name := range []string{"api-2.json", "service-2.json"} {
			if p := filepath.Join(svcDir, v.Name(), name); fileExists(p) {
				return p
			}
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (m *model) signingName() string {
	if m.Metadata.SigningName != "" {
		return m.Metadata.SigningName
	}
	return m.Metadata.EndpointPrefix
}

// protocols lists what the service reads, its primary protocol first; a
// JSON service that stayed compatible with the Query protocol reads both.
func (m *model) protocols() []string {
	ps := []string{m.Metadata.Protocol}
	for _, p := range m.Metadata.Protocols {
		if p != ps[0] {
			ps = append(ps, p)
		}
	}
	if len(m.Metadata.AWSQueryCompatible) > 0 && !contains(ps, "query") {
		ps = append(ps, "query")
	}
	return ps
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// inputBits are the query keys an operation reads (required ones marked
// with !, a map of any keys as *) and the headers it requires.
func (m *model) inputBits(input string) (query, headers []string) {
	sh, ok := m.Shapes[input]
	if !ok {
		return nil, nil
	}
	for name, mem := range sh.Members {
		required := contains(sh.Required, name)
		loc := mem.LocationName
		if loc == "" {
			loc = name
		}
		switch mem.Location {
		case "querystring":
			if m.Shapes[mem.Shape].Type == "map" {
				query = append(query, "*")
			} else if required {
				query = append(query, "!"+loc)
			} else {
				query = append(query, loc)
			}
		case "header":
			if required {
				headers = append(headers, strings.ToLower(loc))
			}
		}
	}
	sort.Strings(query)
	sort.Strings(headers)
	return query, headers
}
