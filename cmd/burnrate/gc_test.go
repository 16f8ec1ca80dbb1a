package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUpTunesTheGarbageCollectorUnlessTheEnvironmentDoes(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cases := []struct {
		name    string
		env     map[string]string
		percent int
		limit   int64
	}{
		{"nothing set: up's measured settings", nil, upGCPercent, upMemoryLimit},
		{"GOGC set: the runtime's reading of it stays", map[string]string{"GOGC": "100"}, -1, upMemoryLimit},
		{"GOMEMLIMIT set: it stays", map[string]string{"GOMEMLIMIT": "512MiB"}, upGCPercent, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, l := upGC(env(tc.env))
			require.Equal(t, tc.percent, p)
			require.Equal(t, tc.limit, l)
		})
	}
}
