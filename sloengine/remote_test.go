package sloengine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRemoteBackendQuarterAndNinetyDayPeriods: on the Debian Prometheus
// (2.42), a calendar-quarter SLO and a 90d SLO fill their periods (up to
// 26,496 five-minute slices, more than Prometheus's 11,000 points per
// range query) without an error, and their period equals Prometheus's own
// increase over it, as of the newest slice's end.
func TestRemoteBackendQuarterAndNinetyDayPeriods(t *testing.T) {
	n := 3 * 24 * 60
	start := time.Now().Add(-time.Duration(n+30) * time.Minute).Truncate(time.Hour)
	all := series{labels: map[string]string{"__name__": "http_requests_total", "job": "q", "code": "200"}}
	bad := series{labels: map[string]string{"__name__": "http_requests_total", "job": "q", "code": "500"}}
	var g, b float64
	for m := range n {
		g += 597
		b += 3
		if m%500 < 15 {
			b += 200
		}
		ts := start.Add(time.Duration(m)*time.Minute + 7*time.Second).UnixMilli()
		all.ts, all.vals = append(all.ts, ts), append(all.vals, g)
		bad.ts, bad.vals = append(bad.ts, ts), append(bad.vals, b)
	}
	promURL := startPrometheus(t, openMetrics("http_requests", []series{all, bad}), nil)
	slos := loadSLOs(t, `version: burnrate/v1
service: remote
slos:
  - name: quarter
    objective: 99.9
    calendar: {unit: quarter, time_zone: UTC}
    sli: &sli
      events:
        error_query: sum(rate(http_requests_total{job="q",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="q"}[{{.window}}]))
  - name: ninety
    objective: 99.9
    period: 90d
    sli: *sli
`)
	prom := RemoteQuerier{URL: promURL}
	e, err := New(Options{SLOs: slos, Querier: prom})
	require.NoError(t, err)
	at := start.Add(time.Duration(n)*time.Minute - 30*time.Second)
	ctx := context.Background()
	e.Evaluate(ctx, at)
	for i, s := range e.Snapshot() {
		require.Empty(t, s.Error, s.ID)
		pstart, _ := slos[i].periodBounds(at)
		end := sliceEnd(sliceKey(at))
		rng := end.Sub(sliceEnd(sliceKey(pstart)))
		q := fmt.Sprintf("%s / %s", slos[i].SLI.badExpr(rng), slos[i].SLI.totalExpr(rng))
		want, ok, err := scalar(ctx, prom, q, end)
		require.NoError(t, err)
		require.True(t, ok)
		requireClose(t, want, float64(s.PeriodSLI.ErrorRatio), "%s period error ratio", s.ID)
		require.Greater(t, float64(s.PeriodCoverage), 0.0, s.ID)
		require.Less(t, float64(s.PeriodCoverage), 0.05, "%s: three days of a quarter", s.ID)
	}
	// The next cycle only recomputes the provisional slices.
	e.Evaluate(ctx, at.Add(time.Minute))
	for _, s := range e.Snapshot() {
		require.Empty(t, s.Error, s.ID)
	}
}
