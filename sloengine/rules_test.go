package sloengine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// outageSLO is a 99.9% / 30d SLO on two counters, for promtool unit tests.
const outageSLO = `version: prometheus/v1
service: t
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors_total{job="t"}[{{.window}}]))
        total_query: sum(rate(requests_total{job="t"}[{{.window}}]))
    alerting:
      name: TAvailability
`

// TestAlertTiersFireAtTheRightMinutes runs generated `promtool test rules`
// unit tests: 60 requests a minute, then a 10-minute total outage after
// minute 4400 (past the 3d window, so every window holds only real data).
//
// promtool evaluates on the sample grid with Prometheus 2.42's closed
// ranges, so the error ratio over a window of W minutes is exactly
// k/W, k being the outage minutes inside the window. A tier fires while
// both its windows exceed factor x 0.001. Worked by hand:
//
//	1h/5m   (14.4): k/60 > 0.0144 from k=1 (4401); 5m empties of errors at 4415
//	6h/30m  (6):    k/360 > 0.006 from k=3 (4403); 30m clears at 4440
//	1d/2h   (3):    k/1440 > 0.003 from k=5 (4405); 2h clears at 4530
//	3d/6h   (1):    k/4320 > 0.001 from k=5 (4405); 6h clears at 4770
func TestAlertTiersFireAtTheRightMinutes(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus); CI installs it")
	}
	l := NewLoader()
	l.Add("t.yml", []byte(outageSLO))
	slos, err := l.Result()
	require.NoError(t, err)
	files, err := RuleFiles(slos, time.Minute)
	require.NoError(t, err)

	type span struct {
		long, short string
		first, last int // minutes the tier fires, inclusive
	}
	tiers := []span{
		{"1h", "5m", 4401, 4414},
		{"6h", "30m", 4403, 4439},
		{"1d", "2h", 4405, 4529},
		{"3d", "6h", 4405, 4769},
	}
	severity := map[string]string{"1h": "page", "6h": "page", "1d": "ticket", "3d": "ticket"}
	factor := map[string]string{"1h": "14.4", "6h": "6", "1d": "3", "3d": "1"}
	percent := map[string]string{"1h": "2", "6h": "5", "1d": "10", "3d": "10"}
	minutes := map[int]bool{4400: true}
	for _, s := range tiers {
		minutes[s.first-1], minutes[s.first], minutes[s.last], minutes[s.last+1] = true, true, true, true
	}
	var checks []int
	for m := range minutes {
		checks = append(checks, m)
	}
	sort.Ints(checks)

	var b strings.Builder
	// Groups run in their own goroutines in Prometheus (and in random order
	// in promtool): pin the order so alerts see this minute's recordings.
	fmt.Fprintf(&b, "rule_files: [t.rules.yml]\nevaluation_interval: 1m\n")
	fmt.Fprintf(&b, "group_eval_order: [sloth-slo-sli-recordings-t-availability, sloth-slo-meta-recordings-t-availability, sloth-slo-alerts-t-availability]\ntests:\n  - interval: 1m\n    input_series:\n")
	fmt.Fprintf(&b, "      - series: 'requests_total{job=\"t\"}'\n        values: '0+60x4800'\n")
	fmt.Fprintf(&b, "      - series: 'errors_total{job=\"t\"}'\n        values: '0x4400 60+60x9 600x390'\n")
	fmt.Fprintf(&b, "    alert_rule_test:\n")
	firingAt := map[int]int{}
	for _, m := range checks {
		fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: TAvailability\n        exp_alerts:\n", m)
		for _, s := range tiers {
			if m < s.first || m > s.last {
				continue
			}
			firingAt[m]++
			fmt.Fprintf(&b, `          - exp_labels:
              sloth_id: t-availability
              sloth_service: t
              sloth_slo: availability
              severity: %s
              sloth_severity: %s
              burnrate_long_window: %s
              burnrate_short_window: %s
            exp_annotations:
              summary: "t-availability: error budget burn over %s/%s above %sx (%s%% of the 30d budget)"
`, severity[s.long], severity[s.long], s.long, s.short, s.long, s.short, factor[s.long], percent[s.long])
		}
		if firingAt[m] == 0 {
			b.WriteString("          []\n")
		}
	}
	require.Equal(t, 0, firingAt[4400], "nothing fires before the outage")
	require.Equal(t, 4, firingAt[4405], "every tier fires 5 minutes into a total outage")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.rules.yml"), files["t.rules.yml"], 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.test.yml"), []byte(b.String()), 0o644))
	cmd := exec.Command(promtool, "test", "rules", "t.test.yml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s\ntest file:\n%s", out, b.String())
	require.Contains(t, string(out), "SUCCESS")
}
