package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestATierOnAWindowTheSLOEngineDoesNotEvaluateIsRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yml")
	require.NoError(t, os.WriteFile(f, []byte(`alerting:
  rules:
    tiers:
      - {name: page-quick, severity: page, long_window: 1h, short_window: 15m, factor: 10}
`), 0o600))
	_, err := loadConfig(f, nil)
	require.ErrorContains(t, err, "tier page-quick: short_window 15m is not an evaluated window (5m, 30m, 1h, 2h, 6h, 1d, 3d)")
	require.ErrorContains(t, err, "c.yml:2: alerting.rules: tiers:", "the file and line of the key")
}
