package app_test

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
)

// loopsRunning counts, per loop function, the goroutines of this process
// whose stack is inside it.
func loopsRunning(t *testing.T, loops []string) map[string]int {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&buf, 2))
	out := map[string]int{}
	for _, g := range strings.Split(buf.String(), "\n\n") {
		for _, loop := range loops {
			if strings.Contains(g, loop+"(") {
				out[loop]++
			}
		}
	}
	return out
}

// Each component's loop runs once. The incidents service used to run its
// escalation loop twice: it was alerting's receiver and also satisfied the
// runner interface alerting started its receivers by, so every page held
// up by Slack was sent twice after a restart.
func TestEveryComponentsLoopRunsOnce(t *testing.T) {
	opts := app.DefaultOptions()
	opts.Alerting.Alertmanager.URLs = []string{"http://127.0.0.1:1"} // the forwarder runs too
	r := apptest.StartApp(t, opts)
	loops := []string{
		"github.com/burnrate/burnrate/incidents.(*Service).Run",
		"github.com/burnrate/burnrate/alerting.(*Manager).Run",
		"github.com/burnrate/burnrate/alerting/alertmanager.(*Forwarder).Run",
		"github.com/burnrate/burnrate/sloengine.(*Engine).Run",
		"github.com/burnrate/burnrate/collector.(*Collector).Run",
	}
	want := map[string]int{}
	for _, l := range loops {
		want[l] = 1
	}
	// Give every loop the time to start (and a second copy to show).
	require.Eventually(t, func() bool { return len(loopsRunning(t, loops)) == len(loops) }, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, r.Ready())
	for range 5 {
		require.Equal(t, want, loopsRunning(t, loops), "each loop runs in exactly one goroutine")
		time.Sleep(100 * time.Millisecond)
	}
}
