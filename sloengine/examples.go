package sloengine

import (
	"embed"
	"io/fs"
	"path"
)

//go:embed examples/*.yml
var examples embed.FS

// Examples returns the SLOs `burnrate up` ships for the demo platform.
func Examples() ([]*SLO, error) {
	l := NewLoader()
	entries, err := fs.ReadDir(examples, "examples")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p := path.Join("examples", e.Name())
		raw, err := examples.ReadFile(p)
		if err != nil {
			return nil, err
		}
		l.Add("embedded:"+p, raw)
	}
	return l.Result()
}
