package sloengine

import (
	"testing"
)

// FuzzLoad feeds arbitrary files to the spec loader: it must return SLOs or
// errors, never panic, and every error must be a located SpecError.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(slothSpec))
	f.Add([]byte(openSLOFile))
	f.Add([]byte(onePercentSpec))
	f.Add([]byte("version: burnrate/v1\nservice: a\nslos: [{name: x, objective: 99, sli: {latency: {metric: m, threshold: 0.25}}}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := NewLoader()
		l.Add("fuzz.yml", data)
		slos, err := l.Result()
		if err == nil {
			for _, s := range slos {
				if s.Objective <= 0 || s.Objective >= 1 {
					t.Fatalf("accepted objective %v", s.Objective)
				}
				_, _ = RuleFiles([]*SLO{s}, 0)
			}
		}
	})
}
