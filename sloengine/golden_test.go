package sloengine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/testutil"
	"github.com/burnrate/burnrate/sloengine"
)

func TestRuleFilesMatchGoldenFiles(t *testing.T) {
	slos, err := sloengine.Examples()
	require.NoError(t, err)
	files, err := sloengine.RuleFiles(slos, 30*time.Second)
	require.NoError(t, err)
	require.Len(t, files, 2)
	for name, body := range files {
		require.True(t, strings.HasPrefix(string(body), sloengine.GeneratedHeader))
		testutil.Golden(t, strings.TrimSuffix(name, ".yml")+".golden.yml", body)
	}
}
