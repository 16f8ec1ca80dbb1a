package app_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
	"github.com/burnrate/burnrate/internal/app"
	"github.com/burnrate/burnrate/internal/apptest"
	"github.com/burnrate/burnrate/internal/testutil"
)

// contractSLOs are three SLOs on one service: checkout takes the tiers of
// alerting.rules.tiers (it lists none, and carries a label name the
// Prometheus text form cannot write unquoted), search lists its own, and
// admin sees too little traffic for its min_events.
const contractSLOs = `version: burnrate/v1
service: shop
slos:
  - name: checkout
    objective: 99.9
    labels:
      app.kubernetes.io/team: payments
    sli:
      events:
        error_query: sum(rate(shop_errors_total{slo="checkout"}[{{.window}}]))
        total_query: sum(rate(shop_requests_total{slo="checkout"}[{{.window}}]))
  - name: search
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(shop_errors_total{slo="search"}[{{.window}}]))
        total_query: sum(rate(shop_requests_total{slo="search"}[{{.window}}]))
    alerting:
      tiers:
        - {severity: page, long_window: 1h, short_window: 5m, budget_percent: 2}
        - {severity: ticket, long_window: 6h, short_window: 30m, budget_percent: 1}
  - name: admin
    objective: 99.9
    min_events: 1000
    sli:
      events:
        error_query: sum(rate(shop_errors_total{slo="admin"}[{{.window}}]))
        total_query: sum(rate(shop_requests_total{slo="admin"}[{{.window}}]))
`

// apiTier is a tier as GET /api/v1/slos shows it.
type apiTier struct {
	Severity string `json:"severity"`
	Long     string `json:"long_window"`
	Short    string `json:"short_window"`
	Firing   bool   `json:"firing"`
	Held     bool   `json:"held"`
}

// TestTheAPIsFiringIsWhatPages runs the app with tiers overriding the
// defaults (alerting.rules.tiers, or alerting.rules.slos.<id>.tiers),
// remote-writes 55 minutes at 1% errors (burn rate 10) for checkout and
// search and at 50% for admin's handful of requests, and requires that
// every tier the API shows as firing is an ALERTS series and a rule alert
// in state firing, and no other.
func TestTheAPIsFiringIsWhatPages(t *testing.T) {
	// A page at burn rate 5 on 1h/5m, instead of the default 14.4, and a
	// ticket at 20 on 6h/30m.
	override := []alerting.TierConfig{
		{Name: "page-fast", Severity: "page", Long: time.Hour, Short: 5 * time.Minute, Factor: 5},
		{Name: "ticket-fast", Severity: "ticket", Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: 20},
	}
	cases := []struct {
		name string
		cfg  func(*alerting.RulesConfig)
		held []string
	}{
		{"tiers overridden for every SLO by alerting.rules.tiers", func(c *alerting.RulesConfig) { c.Tiers = override },
			[]string{"shop-admin page 1h/5m", "shop-admin ticket 6h/30m"}},
		{"tiers overridden for one SLO by alerting.rules.slos", func(c *alerting.RulesConfig) {
			c.SLOs = map[string]alerting.SLORulesConfig{"shop-checkout": {Tiers: override}}
		}, []string{"shop-admin page 1h/5m", "shop-admin page 6h/30m", "shop-admin ticket 1d/2h", "shop-admin ticket 3d/6h"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := filepath.Join(t.TempDir(), "shop.yml")
			require.NoError(t, os.WriteFile(spec, []byte(contractSLOs), 0o644))
			opts := app.DefaultOptions()
			opts.Demo.Enabled = false
			opts.Collector.OTLPListen = ""
			opts.Slos = []string{spec}
			opts.SLO.Interval = time.Second
			opts.Alerting.EvaluationInterval = time.Second
			tc.cfg(&opts.Alerting.Rules)
			requireAPIFiringIsWhatPages(t, apptest.StartApp(t, opts), tc.held)
		})
	}
}

func requireAPIFiringIsWhatPages(t *testing.T, r *apptest.Running, wantHeld []string) {

	// 55 minutes of counters every 15s, in one request, as a sender that
	// comes back after an outage delivers them (within the hour the head
	// still accepts once the app's own series are in).
	now := time.Now()
	var req prompb.WriteRequest
	for _, s := range []struct {
		slo        string
		reqs, errs float64 // per second
	}{{"checkout", 10, 0.1}, {"search", 10, 0.1}, {"admin", 0.1, 0.05}} {
		for _, m := range []struct {
			name string
			rate float64
		}{{"shop_requests_total", s.reqs}, {"shop_errors_total", s.errs}} {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: m.name}, {Name: "slo", Value: s.slo}}}
			for i := 220; i >= 0; i-- {
				at := now.Add(-time.Duration(i) * 15 * time.Second)
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at.UnixMilli(), Value: float64(220-i) * 15 * m.rate})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
	}
	raw, err := req.Marshal()
	require.NoError(t, err)
	code, body := postRemoteWrite(t, r.URL, snappy.Encode(nil, raw))
	require.Less(t, code, 300, body)

	// apiState lists "slo severity long/short" of the API's firing tiers, and
	// of those held.
	apiState := func() (firing, held []string, evaluated bool) {
		_, body := testutil.HTTPGet(t, r.URL+"/api/v1/slos")
		var resp struct {
			Data []struct {
				ID      string    `json:"id"`
				Tiers   []apiTier `json:"tiers"`
				Windows []struct {
					Window string   `json:"window"`
					Total  *float64 `json:"total_events"`
				} `json:"windows"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
		evaluated = len(resp.Data) == 3
		for _, s := range resp.Data {
			has := false
			for _, w := range s.Windows {
				has = has || (w.Window == "1h" && w.Total != nil && *w.Total > 0)
			}
			evaluated = evaluated && has
			for _, tier := range s.Tiers {
				key := s.ID + " " + tier.Severity + " " + tier.Long + "/" + tier.Short
				if tier.Firing {
					firing = append(firing, key)
				}
				if tier.Held {
					held = append(held, key)
				}
			}
		}
		sort.Strings(firing)
		sort.Strings(held)
		return firing, held, evaluated
	}
	// alertsFiring lists the same of the firing ALERTS series.
	alertsFiring := func() []string {
		q := url.Values{"query": {`ALERTS{alertname="SLOErrorBudgetBurn",alertstate="firing"}`}}
		_, body := testutil.HTTPGet(t, r.URL+"/api/v1/query?"+q.Encode())
		var resp struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
		var out []string
		for _, s := range resp.Data.Result {
			out = append(out, s.Metric["slo"]+" "+s.Metric["sloth_severity"]+" "+s.Metric["window"])
		}
		sort.Strings(out)
		return out
	}
	// rulesFiring lists the same of the firing burn-rate rule alerts.
	rulesFiring := func() []string {
		var out []string
		for ls, st := range r.App.Alerting().RuleStates() {
			if st == alerting.StateFiring && strings.Contains(ls, `alertname="`+alerting.AlertBurnRate+`"`) {
				out = append(out, labelValue(ls, "slo")+" "+labelValue(ls, "sloth_severity")+" "+labelValue(ls, "window"))
			}
		}
		sort.Strings(out)
		return out
	}

	var api, held, alerts, rules []string
	agree := func() bool {
		var evaluated bool
		api, held, evaluated = apiState()
		alerts, rules = alertsFiring(), rulesFiring()
		return evaluated && len(api) > 0 && fmt.Sprint(api) == fmt.Sprint(alerts) && fmt.Sprint(api) == fmt.Sprint(rules)
	}
	if !assert.Eventually(t, agree, 30*time.Second, 200*time.Millisecond) {
		t.Fatalf("the API's firing tiers are not what pages: API %v, ALERTS %v, rules %v", api, alerts, rules)
	}
	require.Equal(t, []string{"shop-checkout page 1h/5m", "shop-search ticket 6h/30m"}, api,
		"burn 10 is above the override's 5 and below its 20; search keeps its own 14.4 and 1.2")
	require.Equal(t, wantHeld, held, "admin's few requests are held, whatever their burn rate")

	// The deploy gate sees checkout's page, whatever its labels.
	require.Eventually(t, func() bool {
		_, body := testutil.HTTPGet(t, r.URL+"/api/v1/gate?service=shop")
		return strings.Contains(body, "page alert firing")
	}, 10*time.Second, 200*time.Millisecond, "the gate does not block on the firing page")
}

// labelValue reads one label from a label set's String form.
func labelValue(ls, name string) string {
	for _, prefix := range []string{"{", " "} {
		if i := strings.Index(ls, prefix+name+`="`); i >= 0 {
			rest := ls[i+len(prefix)+len(name)+2:]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	return ""
}
