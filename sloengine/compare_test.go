package sloengine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// scenario yields the good and bad events added in minute m of n.
type scenario struct {
	name string
	inc  func(m, n int) (good, bad float64)
	// resetAt, when > 0, drops both counters to zero at that minute, as a
	// restarted process does.
	resetAt int
}

var scenarios = []scenario{
	{name: "steady", inc: func(m, n int) (float64, float64) { return 999, 1 }},
	{name: "bursty", inc: func(m, n int) (float64, float64) {
		g := 600.0
		if m%30 < 3 {
			g = 3000 // traffic bursts
		}
		if m%97 < 5 {
			return g, 60 // error bursts
		}
		return g, 0
	}},
	{name: "outage", inc: func(m, n int) (float64, float64) {
		if m >= n-50 && m < n-30 {
			return 0, 600 // 20 minutes of total failure, 30 minutes ago
		}
		return 597, 3
	}},
	{name: "zerotraffic", inc: func(m, n int) (float64, float64) {
		if m > n-8*60 {
			return 0, 0 // no requests at all for the last 8 hours
		}
		return 500, 2
	}},
	{name: "counterreset", inc: func(m, n int) (float64, float64) { return 594, 6 }, resetAt: -40},
	// No request has ever failed: the error series does not exist at all.
	{name: "noerrors", inc: func(m, n int) (float64, float64) { return 600, 0 }},
}

// buildScenarios returns counter series for every scenario, sampled each
// minute at second 7, so no sample ever sits on an evaluation instant
// (Prometheus 3 range selectors are left-open, 2.42's are closed).
func buildScenarios(start time.Time, n int) []series {
	var out []series
	for _, sc := range scenarios {
		good := series{labels: map[string]string{"__name__": "http_requests_total", "job": sc.name, "code": "200"}}
		bad := series{labels: map[string]string{"__name__": "http_requests_total", "job": sc.name, "code": "500"}}
		var g, b float64
		reset := n + sc.resetAt
		for m := range n {
			if sc.resetAt != 0 && m == reset {
				g, b = 0, 0
			}
			dg, db := sc.inc(m, n)
			g, b = g+dg, b+db
			ts := start.Add(time.Duration(m)*time.Minute + 7*time.Second).UnixMilli()
			good.ts, good.vals = append(good.ts, ts), append(good.vals, g)
			bad.ts, bad.vals = append(bad.ts, ts), append(bad.vals, b)
		}
		if sc.name == "noerrors" {
			out = append(out, good)
			continue
		}
		out = append(out, good, bad)
	}
	return out
}

func scenarioSLOs(t testing.TB) []*SLO {
	var spec string
	spec = "version: prometheus/v1\nservice: synth\nslos:\n"
	for _, sc := range scenarios {
		spec += fmt.Sprintf(`  - name: %s
    objective: 99.9
    period: 2d
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="%s",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="%s"}[{{.window}}]))
`, sc.name, sc.name, sc.name)
	}
	l := NewLoader()
	l.Add("synth.yml", []byte(spec))
	slos, err := l.Result()
	require.NoError(t, err)
	return slos
}

// TestEngineMatchesPrometheus loads the same series into Burnrate's TSDB
// and into the Debian prometheus (2.42) and requires equal SLIs, burn rates
// and remaining budgets: the engine on the TSDB, the engine on the external
// backend, and the exported recording rules' expressions evaluated by the
// real Prometheus.
func TestEngineMatchesPrometheus(t *testing.T) {
	// Recent data: Prometheus drops blocks older than its retention.
	n := 3 * 24 * 60
	start := time.Now().Add(-time.Duration(n+90) * time.Minute).Truncate(time.Hour)
	ss := buildScenarios(start, n)
	slos := scenarioSLOs(t)
	// Prometheus runs the exported rules every 5s, so that its own
	// recordings can be compared below without a long wait.
	rules, err := RuleFiles(slos, 5*time.Second)
	require.NoError(t, err)
	promURL := startPrometheus(t, openMetrics("http_requests", ss), rules)

	db := openTSDB(t, ss)
	at := start.Add(time.Duration(n)*time.Minute - 30*time.Second)
	ctx := context.Background()

	local, err := New(Options{SLOs: scenarioSLOs(t), Querier: LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}, Queryable: db})
	require.NoError(t, err)
	local.Evaluate(ctx, at)
	remote, err := New(Options{SLOs: scenarioSLOs(t), Querier: RemoteQuerier{URL: promURL}})
	require.NoError(t, err)
	remote.Evaluate(ctx, at)

	// The recording rules as exported, by record name and sloth_id.
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(rules["synth.rules.yml"], &rf))
	exported := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				exported[r.Record+"/"+r.Labels["sloth_id"]] = r.Expr
			}
		}
	}
	prom := RemoteQuerier{URL: promURL}
	promValue := func(q string) float64 {
		v, _, err := scalar(ctx, prom, q, at)
		require.NoError(t, err, q)
		return v
	}

	for _, st := range local.states {
		require.NotNil(t, st.plan, "%s takes the incremental path", st.slo.ID)
	}
	ls, rs := local.Snapshot(), remote.Snapshot()
	require.Len(t, ls, len(scenarios))
	require.Len(t, rs, len(scenarios))
	for i, l := range ls {
		r := rs[i]
		t.Run(l.ID, func(t *testing.T) {
			require.Empty(t, l.Error)
			require.Empty(t, r.Error)
			for j, w := range l.Windows {
				want := promValue(exported["slo:sli_error:ratio_rate"+w.Window+"/"+l.ID])
				requireClose(t, want, float64(w.ErrorRatio), "%s error ratio, tsdb vs prometheus rule", w.Window)
				requireClose(t, want, float64(r.Windows[j].ErrorRatio), "%s error ratio, prometheus backend", w.Window)
				requireClose(t, want/l.ErrorBudget, float64(w.BurnRate), "%s burn rate", w.Window)
				requireClose(t, float64(w.TotalEvents), float64(r.Windows[j].TotalEvents), "%s events", w.Window)
			}
			// The period: increase(bad[2d]) / increase(total[2d]) as of the
			// newest slice's end, as the exported period rule computes it.
			s := slos[i]
			q := exported["slo:sli_error:ratio_rate2d/"+l.ID]
			v, _, err := scalar(ctx, prom, q, sliceEnd(sliceKey(at)))
			require.NoError(t, err, q)
			want := v
			requireClose(t, want, float64(l.PeriodSLI.ErrorRatio), "period error ratio")
			requireClose(t, want, float64(r.PeriodSLI.ErrorRatio), "period error ratio, prometheus backend")
			requireClose(t, 1-want/s.ErrorBudget(), float64(l.BudgetRemaining), "budget remaining")
			requireClose(t, float64(l.BudgetRemaining), float64(r.BudgetRemaining), "budget remaining, prometheus backend")
		})
	}

	// Prometheus evaluating the exported rules itself: its recorded
	// slo:sli_error:ratio_rate<w> samples (at its own evaluation instants,
	// now, where the windows of 6h and more still hold the data) equal the
	// engine's values at the same instants.
	var recorded []Sample
	require.Eventually(t, func() bool {
		recorded, err = prom.Query(ctx, `{__name__=~"slo:sli_error:ratio_rate(6h|1d|3d)", sloth_service="synth"}`, time.Now())
		return err == nil && len(recorded) == 3*len(scenarios)
	}, 30*time.Second, 200*time.Millisecond, "prometheus never recorded the exported rules")
	ruleTS := map[string]time.Time{}
	for _, r := range recorded {
		raw, err := prom.do(ctx, "/api/v1/query", url.Values{"query": {fmt.Sprintf("timestamp(%s{sloth_id=%q})", r.Labels["__name__"], r.Labels["sloth_id"])}, "time": {formatTS(time.Now())}})
		require.NoError(t, err)
		var vec []struct {
			Value [2]any `json:"value"`
		}
		require.NoError(t, json.Unmarshal(raw.Data.Result, &vec))
		require.Len(t, vec, 1)
		_, sec, err := parseValue(vec[0].Value)
		require.NoError(t, err)
		ts := time.UnixMilli(int64(math.Round(sec * 1000)))
		// The recorded value as of its own evaluation instant.
		v, ok, err := scalar(ctx, prom, fmt.Sprintf("%s{sloth_id=%q}", r.Labels["__name__"], r.Labels["sloth_id"]), ts)
		require.NoError(t, err)
		require.True(t, ok)
		local.Evaluate(ctx, ts)
		got := map[string]Status{}
		for _, s := range local.Snapshot() {
			got[s.ID] = s
		}
		w, ok := got[r.Labels["sloth_id"]].Window(r.Labels["sloth_window"])
		require.True(t, ok)
		requireClose(t, v, float64(w.ErrorRatio), "%s %s recorded by prometheus at %s", r.Labels["sloth_id"], r.Labels["sloth_window"], ts)
		ruleTS[r.Labels["sloth_id"]] = ts
	}
	require.Len(t, ruleTS, len(scenarios))

	// Sanity of the scenarios themselves, so the comparison is not vacuous.
	byID := map[string]Status{}
	for _, s := range ls {
		byID[s.ID] = s
	}
	o, _ := byID["synth-outage"].Window("1h")
	require.InDelta(t, 20.0/60, float64(o.ErrorRatio), 0.02, "the outage shows in the 1h window")
	require.Less(t, float64(byID["synth-outage"].BudgetRemaining), 0.0, "a 20-minute outage overspends a 99.9%% daily budget")
	z, _ := byID["synth-zerotraffic"].Window("1h")
	require.True(t, z.LowTraffic)
	require.Equal(t, "null", mustJSON(t, z.ErrorRatio))
	ne, _ := byID["synth-noerrors"].Window("1h")
	require.Equal(t, Value(0), ne.ErrorRatio, "no error series means no errors, not an unknown SLI")
	require.InDelta(t, 1, float64(byID["synth-noerrors"].BudgetRemaining), 0)
	c, _ := byID["synth-counterreset"].Window("1h")
	requireClose(t, 0.01, float64(c.ErrorRatio), "a counter reset does not distort the ratio")
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestExportedRulesPassPromtoolCheck(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus); CI installs it")
	}
	ex, err := Examples()
	require.NoError(t, err)
	l := NewLoader()
	l.Add("web.openslo.yml", []byte(openSLOFile))
	l.Add("sloth.yml", []byte(slothSpec))
	more, err := l.Result()
	require.NoError(t, err)
	files, err := RuleFiles(append(append(ex, scenarioSLOs(t)...), more...), time.Minute)
	require.NoError(t, err)
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, body, 0o644))
		out, err := exec.Command(promtool, "check", "rules", p).CombinedOutput()
		require.NoError(t, err, "promtool check rules %s:\n%s", name, out)
		require.Contains(t, string(out), "SUCCESS")
	}
}

// TestIncrementalEvaluationMatchesPromQL steps an incremental engine and a
// PromQL-only engine through the scenarios while samples keep arriving,
// including late ones, and requires the same numbers at every cycle.
func TestIncrementalEvaluationMatchesPromQL(t *testing.T) {
	n := 4 * 24 * 60
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	all := buildScenarios(start, n)
	cut := n - 90 // the last 90 minutes arrive while the engines run
	head := make([]series, len(all))
	for i, s := range all {
		head[i] = series{labels: s.labels, ts: s.ts[:cut], vals: s.vals[:cut]}
	}
	db := openTSDB(t, head)
	ctx := context.Background()
	q := LocalQuerier{Engine: NewPromQLEngine(), Queryable: db}
	inc, err := New(Options{SLOs: scenarioSLOs(t), Querier: q, Queryable: db})
	require.NoError(t, err)
	ref, err := New(Options{SLOs: scenarioSLOs(t), Querier: q})
	require.NoError(t, err)

	next := cut
	for cycle := 0; cycle < 25; cycle++ {
		at := start.Add(time.Duration(cut+cycle*3)*time.Minute + 20*time.Second)
		// Append what has "arrived": first the samples held back last cycle
		// (still in order for their series), then those up to at, except
		// the newest minute of every other series, which comes one cycle
		// late. Every append must be accepted.
		app := db.Appender(ctx)
		if cycle > 0 && next-1 >= cut && next-1 < n {
			for i, s := range all {
				if i%2 == 1 {
					_, err := app.Append(0, labels.FromMap(s.labels), s.ts[next-1], s.vals[next-1])
					require.NoError(t, err, "late sample of %v", s.labels)
				}
			}
		}
		upto := cut + cycle*3
		for m := next; m <= upto && m < n; m++ {
			for i, s := range all {
				if i%2 == 1 && m == upto {
					continue
				}
				_, err := app.Append(0, labels.FromMap(s.labels), s.ts[m], s.vals[m])
				require.NoError(t, err)
			}
		}
		require.NoError(t, app.Commit())
		next = upto + 1

		inc.Evaluate(ctx, at)
		ref.Evaluate(ctx, at)
		a, b := inc.Snapshot(), ref.Snapshot()
		for i := range a {
			require.Empty(t, a[i].Error)
			for j, w := range a[i].Windows {
				requireClose(t, float64(b[i].Windows[j].ErrorRatio), float64(w.ErrorRatio), "cycle %d %s %s", cycle, a[i].ID, w.Window)
				requireClose(t, float64(b[i].Windows[j].TotalEvents), float64(w.TotalEvents), "cycle %d %s %s events", cycle, a[i].ID, w.Window)
			}
			requireClose(t, float64(b[i].BudgetRemaining), float64(a[i].BudgetRemaining), "cycle %d %s budget", cycle, a[i].ID)
		}
	}
}
