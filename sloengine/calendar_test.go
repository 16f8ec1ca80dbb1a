package sloengine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCalendarPeriodsFollowTheZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	cases := []struct {
		name      string
		unit      string
		at        string
		wantStart string
		wantLen   time.Duration
	}{
		{"March in Berlin is one hour short because of the DST change on the 29th", "month", "2026-03-31T21:55:00Z", "2026-02-28T23:00:00Z", 31*24*time.Hour - time.Hour},
		{"five minutes after local midnight the April budget has started", "month", "2026-03-31T22:05:00Z", "2026-03-31T22:00:00Z", 30 * 24 * time.Hour},
		{"October in Berlin is one hour long", "month", "2026-10-15T12:00:00Z", "2026-09-30T22:00:00Z", 31*24*time.Hour + time.Hour},
		{"the ISO week holding the spring DST change starts on Monday and is 167 hours", "week", "2026-03-29T12:00:00Z", "2026-03-22T23:00:00Z", 7*24*time.Hour - time.Hour},
		{"a Monday just after local midnight starts a new week", "week", "2026-03-29T22:30:00Z", "2026-03-29T22:00:00Z", 7 * 24 * time.Hour},
		{"the second quarter starts in April local time", "quarter", "2026-05-10T00:00:00Z", "2026-03-31T22:00:00Z", 91 * 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &SLO{Calendar: &Calendar{Unit: tc.unit, Location: berlin}}
			at, _ := time.Parse(time.RFC3339, tc.at)
			start, length := s.periodBounds(at)
			require.Equal(t, tc.wantStart, start.Format(time.RFC3339))
			require.Equal(t, tc.wantLen, length)
		})
	}
}

// budgetSeries is 10 requests/s sampled each minute at second 7 from 18:00
// to 23:00 UTC on 2026-03-31, with a total outage whose error increments
// land on the samples of 20:01:07..20:30:07 and, at twice the traffic, a
// 50% failure on the samples of 21:01:07..21:04:07. Every 5-minute slice
// ending 20:05..20:30 then has error ratio 1, the slice ending 21:05 has
// 0.5 at 20 req/s, and every other slice 0: rate() extrapolates errors and
// totals alike, and counters start above zero so nothing is clamped.
func budgetSeries() []series {
	start := time.Date(2026, 3, 31, 18, 0, 7, 0, time.UTC)
	all := series{labels: map[string]string{"__name__": "requests_total"}}
	bad := series{labels: map[string]string{"__name__": "errors_total"}}
	a, b := 1000.0, 1000.0
	for m := 0; m <= 300; m++ {
		ts := start.Add(time.Duration(m) * time.Minute)
		switch {
		case m == 0:
		case m >= 121 && m <= 150:
			a, b = a+600, b+600
		case m >= 181 && m <= 184:
			a, b = a+1200, b+600
		default:
			a += 600
		}
		all.ts, all.vals = append(all.ts, ts.UnixMilli()), append(all.vals, a)
		bad.ts, bad.vals = append(bad.ts, ts.UnixMilli()), append(bad.vals, b)
	}
	return []series{all, bad}
}

const budgetSLOs = `version: burnrate/v1
service: b
slos:
  - name: calendar
    objective: 99
    calendar: {unit: month, time_zone: Europe/Berlin}
    sli: &sli
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
  - name: occurrences
    objective: 99
    period: 2d
    sli: *sli
  - name: ratio-timeslices
    objective: 99
    period: 2d
    budgeting_method: RatioTimeslices
    sli: *sli
  - name: timeslices
    objective: 99
    period: 2d
    budgeting_method: Timeslices
    time_slice_target: 0.95
    sli: *sli
`

// TestBudgetsOnHandComputedCases: 47 slices with data end between 18:05
// and 21:55; six are all errors at 10 req/s, one is half errors at 20 req/s.
//
//	Occurrences:     increase(errors) / increase(requests) between the 235
//	                 samples inside the period: errors in 34 of its 234
//	                 minutes, 600 requests a minute, four minutes doubled:
//	                 34*600 / (238*600) = 34/238
//	RatioTimeslices: mean slice ratio = (6 + 0.5) / 47
//	Timeslices:      slices below 95% good = 7 of 47
//
// Consumed budget = ratio x coverage / 0.01: the data covers 47 slices
// (235 minutes) of each period, the 2d ones and the calendar month
// (Europe/Berlin, from 2026-02-28T23:00Z, 31d-1h long with DST), whose
// data starts long after the month did; at 22:05Z April has begun and the
// budget is whole.
func TestBudgetsOnHandComputedCases(t *testing.T) {
	db := openTSDB(t, budgetSeries())
	slos := loadSLOs(t, budgetSLOs)
	e := newTestEngine(t, slos, db)
	ctx := context.Background()
	at := time.Date(2026, 3, 31, 21, 55, 0, 0, time.UTC)
	e.Evaluate(ctx, at)
	got := map[string]Status{}
	for _, s := range e.Snapshot() {
		require.Empty(t, s.Error, s.ID)
		got[s.Name] = s
	}
	eb := 1 - 0.99
	occ := 34.0 / 238
	cov2d := 235.0 / (2 * 24 * 60)
	requireClose(t, occ, float64(got["occurrences"].PeriodSLI.ErrorRatio), "occurrences ratio")
	requireClose(t, cov2d, float64(got["occurrences"].PeriodCoverage), "occurrences coverage")
	requireClose(t, 1-occ*cov2d/eb, float64(got["occurrences"].BudgetRemaining), "occurrences remaining")
	requireClose(t, 238*600, float64(got["occurrences"].PeriodSLI.TotalEvents), "occurrences events")
	requireClose(t, 6.5/47, float64(got["ratio-timeslices"].PeriodSLI.ErrorRatio), "ratio timeslices")
	requireClose(t, 7.0/47, float64(got["timeslices"].PeriodSLI.ErrorRatio), "timeslices")
	requireClose(t, 1-(7.0/47)*cov2d/eb, float64(got["timeslices"].BudgetRemaining), "timeslices remaining")

	monthStart := time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC)
	coverage := (235 * time.Minute).Seconds() / (31*24*time.Hour - time.Hour).Seconds()
	cal := got["calendar"]
	require.Equal(t, monthStart, cal.PeriodStart)
	requireClose(t, occ, float64(cal.PeriodSLI.ErrorRatio), "calendar ratio")
	requireClose(t, occ*coverage/eb, float64(cal.BudgetConsumed), "calendar consumed")
	// At the 1h burn the budget would last days; March ends in 5 minutes,
	// where it resets.
	f := cal.Forecasts[0]
	require.Equal(t, "1h", f.Window)
	require.Greater(t, float64(f.BurnRate), 0.0)
	require.InDelta(t, 300, float64(f.Seconds), 0, "capped at the end of the month")
	require.True(t, f.OutlastsPeriod)

	// Across the boundary the same engine (incremental slices) resets.
	e.Evaluate(ctx, at.Add(10*time.Minute))
	for _, s := range e.Snapshot() {
		if s.Name != "calendar" {
			continue
		}
		require.Equal(t, time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC), s.PeriodStart)
		require.InDelta(t, 0, float64(s.BudgetConsumed), 0, "a new month starts with the whole budget")
		require.InDelta(t, 1, float64(s.BudgetRemaining), 0)
		d3, _ := s.Window("3d")
		require.Greater(t, float64(d3.ErrorRatio), 0.0, "rolling windows still see March's outage")
	}
}
