package dashboards_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/dashboards"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/sloengine"
)

type promResult struct {
	Status string
	Error  string
	Data   struct {
		ResultType string
		Result     []json.RawMessage
	}
}

func promQuery(t *testing.T, base, path string, v url.Values) promResult {
	t.Helper()
	resp, err := http.PostForm(base+path, v)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r promResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

// grafanaExpr expands a panel query as Grafana would for a range of a few
// minutes: $__rate_interval is at least four scrape intervals.
func grafanaExpr(e string, vars map[string]string) string {
	e = strings.ReplaceAll(e, "$__rate_interval", "1m")
	for k, v := range vars {
		e = strings.ReplaceAll(e, "${"+k+"}", v)
		e = strings.ReplaceAll(e, "$"+k, v)
	}
	return e
}

// TestEveryPanelHasDataOnARunningBurnrate runs every query of every
// generated panel, as Grafana's Prometheus data source sends it, against
// `burnrate up` (demo platform, its load, self-scrape) and requires data,
// after resolving every template variable through the label-values API.
func TestEveryPanelHasDataOnARunningBurnrate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole stack for a minute")
	}
	opts := app.DefaultOptions()
	opts.Collector.Scrape.Interval = 5 * time.Second
	opts.Collector.Scrape.Timeout = 5 * time.Second
	opts.SLO.Interval = 2 * time.Second
	r := apptest.StartApp(t, opts)

	slos, err := sloengine.Examples()
	require.NoError(t, err)
	files, err := dashboards.Generate(slos, dashboards.Options{URL: r.URL, Demo: true})
	require.NoError(t, err)
	ds := dashboardsOf(t, files)

	type target struct{ dash, panel, expr string }
	var targets []target
	vars := map[string]map[string]string{}
	for _, d := range ds {
		vars[d.UID] = map[string]string{}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				targets = append(targets, target{d.UID, p.Title, tg.Expr})
			}
		}
	}

	// Sloth's published dashboards (grafana.com 14348 "SLO / Detail" and
	// 14643 "SLO / High level") read these series; they must have data on
	// what Burnrate writes back. ALERTS (their alert panels) is written by
	// the alert rules and tested with them (internal/app).
	slothVars := map[string]string{"service": "demo-api", "slo": "availability", "sli_window": "5m"}
	vars["sloth"] = slothVars
	for _, e := range []string{
		`max(slo:objective:ratio{sloth_service="${service}", sloth_slo="${slo}"})`,
		`slo:period_error_budget_remaining:ratio{sloth_service="${service}", sloth_slo="${slo}"}`,
		`slo:current_burn_rate:ratio{sloth_service="${service}", sloth_slo="${slo}"}`,
		`slo:period_burn_rate:ratio{sloth_service="${service}", sloth_slo="${slo}"}`,
		`1 - max(slo:sli_error:ratio_rate${sli_window}{sloth_service="${service}", sloth_slo="${slo}"})`,
		`slo:error_budget:ratio{sloth_service="${service}", sloth_slo="${slo}"}`,
		`slo:time_period:days{sloth_service="${service}", sloth_slo="${slo}"}`,
		`count(count by (sloth_id) (sloth_slo_info))`,
		`max by (sloth_service, sloth_slo) (slo:period_error_budget_remaining:ratio{sloth_id!=""})`,
		`sloth_slo_info{sloth_service="${service}"}`,
	} {
		targets = append(targets, target{"sloth", e, e})
	}

	// Variables resolve through GET /api/v1/label/<name>/values with a
	// match[] selector, as Grafana's label_values() does.
	require.Eventually(t, func() bool {
		for _, d := range ds {
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				inner := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
				i := strings.LastIndex(inner, ",")
				sel, label := strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:])
				sel = grafanaExpr(sel, map[string]string{"service": ".*", "team": ".*"})
				resp, err := http.Get(r.URL + "/api/v1/label/" + label + "/values?" + url.Values{"match[]": {sel}}.Encode())
				if err != nil {
					return false
				}
				var lv struct{ Data []string }
				_ = json.NewDecoder(resp.Body).Decode(&lv)
				resp.Body.Close()
				if len(lv.Data) == 0 {
					t.Logf("variable %s of %s has no values yet", v.Name, d.UID)
					return false
				}
				vars[d.UID][v.Name] = lv.Data[0]
			}
		}
		return true
	}, 90*time.Second, time.Second)

	// A panel is empty when every one of its queries is.
	emptyPanels := func() []string {
		now := time.Now()
		hasData := map[string]bool{}
		var order, failed []string
		for _, tg := range targets {
			key := tg.dash + " / " + tg.panel
			if _, seen := hasData[key]; !seen {
				order = append(order, key)
				hasData[key] = false
			}
			e := grafanaExpr(tg.expr, vars[tg.dash])
			res := promQuery(t, r.URL, "/api/v1/query_range", url.Values{
				"query": {e}, "start": {strconv.FormatInt(now.Add(-3*time.Minute).Unix(), 10)},
				"end": {strconv.FormatInt(now.Unix(), 10)}, "step": {"5"},
			})
			if res.Status != "success" {
				failed = append(failed, fmt.Sprintf("%s: %s: %s", key, e, res.Error))
			}
			if len(res.Data.Result) > 0 {
				hasData[key] = true
			}
		}
		for _, k := range order {
			if !hasData[k] {
				failed = append(failed, k+": no data")
			}
		}
		return failed
	}
	var last []string
	require.Eventually(t, func() bool {
		last = emptyPanels()
		return len(last) == 0
	}, 90*time.Second, 3*time.Second, "panels without data:\n%s", strings.Join(last, "\n"))
	t.Logf("%d queries of %d dashboards returned data", len(targets), len(ds))
}
