package dashboards_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/burnrate/burnrate/dashboards"
	"github.com/burnrate/burnrate/internal/testutil"
	"github.com/burnrate/burnrate/sloengine"
)

// testSLOs are the demo platform's SLOs plus one of each other SLI kind.
func testSLOs(t *testing.T) []*sloengine.SLO {
	t.Helper()
	slos, err := sloengine.Examples()
	require.NoError(t, err)
	l := sloengine.NewLoader()
	l.Add("kinds.yml", []byte(`version: burnrate/v1
service: shop
labels: {team: payments}
slos:
  - name: checkout-latency-native
    objective: 99
    sli:
      latency_native:
        metric: http_server_request_duration_seconds
        selector: job="shop"
        threshold: 0.3
  - name: queue-healthy
    objective: 99.9
    sli:
      bool_gauge:
        query: shop_queue_healthy
`))
	l.Add("raw.yml", []byte(`version: prometheus/v1
service: search
slos:
  - name: errors
    objective: 99.5
    sli:
      raw:
        error_ratio_query: sum(rate(search_errors_total[{{.window}}])) / sum(rate(search_requests_total[{{.window}}]))
`))
	more, err := l.Result()
	require.NoError(t, err)
	return append(slos, more...)
}

func generate(t *testing.T) []dashboards.File {
	t.Helper()
	files, err := dashboards.Generate(testSLOs(t), dashboards.Options{URL: "http://burnrate:8080", Demo: true})
	require.NoError(t, err)
	return files
}

func TestGeneratedFilesMatchTheirGoldenFiles(t *testing.T) {
	for _, f := range generate(t) {
		name := strings.ReplaceAll(f.Path, "/", "_")
		ext := name[strings.LastIndex(name, "."):]
		testutil.Golden(t, strings.TrimSuffix(name, ext)+".golden"+ext, f.Data)
	}
}

func TestUIDsAreStableUniqueAndShort(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range generate(t) {
		if !strings.HasPrefix(f.Path, "dashboards/") {
			continue
		}
		var d struct{ UID string }
		require.NoError(t, json.Unmarshal(f.Data, &d))
		require.LessOrEqual(t, len(d.UID), 40, d.UID)
		require.False(t, seen[d.UID], "duplicate uid %s", d.UID)
		seen[d.UID] = true
	}
	long := &sloengine.SLO{ID: strings.Repeat("a-very-long-service-name-", 3) + "availability"}
	require.Len(t, dashboards.DetailUID(long), 40)
	require.Equal(t, dashboards.DetailUID(long), dashboards.DetailUID(long))
}

func TestProvisioningPointsGrafanaAtBurnrate(t *testing.T) {
	files := generate(t)
	var ds struct {
		Datasources []struct {
			Name, UID, Type, URL string
		}
	}
	for _, f := range files {
		if f.Path == "provisioning/datasources/burnrate.yml" {
			require.True(t, strings.HasPrefix(string(f.Data), dashboards.Header))
			require.NoError(t, yaml.Unmarshal(f.Data, &ds))
		}
	}
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.Equal(t, dashboards.DatasourceUID, ds.Datasources[0].UID)
	require.Equal(t, "http://burnrate:8080", ds.Datasources[0].URL)
}

// TestDashboardsRoundTripThroughTheSDK holds every dashboard to what Grafana
// checks: the SDK's strict unmarshal (no unknown field) and its validation.
func TestDashboardsRoundTripThroughTheSDK(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, f := range generate(t) {
		if !strings.HasPrefix(f.Path, "dashboards/") {
			continue
		}
		t.Run(f.Path, func(t *testing.T) {
			var strict dashboard.Dashboard
			require.NoError(t, sdkErr(strict.UnmarshalJSONStrict(f.Data)))
			// The strict decoder leaves panels unset (v0.0.22), so the
			// validation and the round trip use the ordinary one.
			var d dashboard.Dashboard
			require.NoError(t, json.Unmarshal(f.Data, &d))
			require.NoError(t, sdkErr(d.Validate()))
			require.EqualValues(t, 42, d.SchemaVersion)
			// The strict check does catch what Grafana would not know.
			bad := strings.Replace(string(f.Data), `"editable": true`, `"editable": true, "editabel": true`, 1)
			require.Error(t, sdkErr(new(dashboard.Dashboard).UnmarshalJSONStrict([]byte(bad))))
			again, err := json.MarshalIndent(d, "", "  ")
			require.NoError(t, err)
			require.JSONEq(t, string(f.Data), string(again))
		})
	}
}

// sdkErr turns the SDK's typed error list into nil when it is empty.
func sdkErr(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}

// panelJSON is what the linter rules read of a panel.
type panelJSON struct {
	Type        string
	Title       string
	Description string
	FieldConfig struct {
		Defaults struct {
			Unit string
		}
	}
	Datasource struct{ UID string }
	Targets    []struct {
		Expr       string
		Datasource struct{ UID string }
	}
}

type dashboardJSON struct {
	UID        string
	Editable   bool
	Panels     []panelJSON
	Templating struct {
		List []struct {
			Name, Type string
			Query      any
			Definition string
		}
	}
	Annotations struct {
		List []struct {
			Name string
			Expr string
		}
	}
}

func dashboardsOf(t *testing.T, files []dashboards.File) []dashboardJSON {
	t.Helper()
	var out []dashboardJSON
	for _, f := range files {
		if strings.HasPrefix(f.Path, "dashboards/") {
			var d dashboardJSON
			require.NoError(t, json.Unmarshal(f.Data, &d))
			out = append(out, d)
		}
	}
	return out
}

var (
	varRef   = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	builtins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
	counters = regexp.MustCompile(`_(total|count|sum|bucket)$`)
)

// promqlOf replaces Grafana's variables so the Prometheus parser can read
// the expression.
func promqlOf(expr string) string {
	return varRef.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.TrimLeft(m, "${")
		if v, ok := builtins[name]; ok {
			return v
		}
		return "x"
	})
}

// TestDashboardsPassTheLinterRules applies grafana/dashboard-linter's rules,
// reimplemented here.
func TestDashboardsPassTheLinterRules(t *testing.T) {
	for _, d := range dashboardsOf(t, generate(t)) {
		t.Run(d.UID, func(t *testing.T) {
			// template-datasource-rule: exactly one data-source variable.
			vars := map[string]bool{}
			ds := 0
			for _, v := range d.Templating.List {
				vars[v.Name] = true
				if v.Type == "datasource" {
					ds++
					require.Equal(t, "datasource", v.Name)
				}
			}
			require.Equal(t, 1, ds, "data-source variables")
			// not uneditable.
			require.True(t, d.Editable)
			exprs := []string{}
			for _, p := range d.Panels {
				if p.Type == "row" {
					continue
				}
				// panel-title-description-rule and panel-units-rule.
				require.NotEmpty(t, p.Title, "panel title")
				require.NotEmpty(t, p.Description, "panel %q description", p.Title)
				require.NotEmpty(t, p.FieldConfig.Defaults.Unit, "panel %q unit", p.Title)
				require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q data source", p.Title)
				require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
				for _, tg := range p.Targets {
					require.Equal(t, "${datasource}", tg.Datasource.UID, "panel %q target data source", p.Title)
					exprs = append(exprs, tg.Expr)
				}
			}
			for _, a := range d.Annotations.List {
				if a.Expr != "" {
					exprs = append(exprs, a.Expr)
				}
			}
			for _, v := range d.Templating.List {
				if v.Definition != "" {
					require.Regexp(t, `^label_values\(.+, [a-z_]+\)$`, v.Definition)
				}
			}
			for _, e := range exprs {
				// Every variable a query uses exists (job/instance rules).
				for _, m := range varRef.FindAllStringSubmatch(e, -1) {
					if _, ok := builtins[m[1]]; !ok {
						require.True(t, vars[m[1]], "query %q uses $%s, which is not a variable", e, m[1])
					}
				}
				lintPromQL(t, e)
			}
		})
	}
}

// lintPromQL: target-promql-rule (it parses), target-rate-interval-rule
// ($__rate_interval in range functions) and target-counter-agg-rule
// (counters only inside rate, irate or increase).
func lintPromQL(t *testing.T, e string) {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(promqlOf(e))
	require.NoError(t, err, "query %q", e)
	parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
		switch n := n.(type) {
		case *parser.Call:
			if slices.Contains([]string{"rate", "irate", "increase"}, n.Func.Name) {
				require.Contains(t, e, "[$__rate_interval]", "query %q: %s without $__rate_interval", e, n.Func.Name)
			}
		case *parser.VectorSelector:
			if !counters.MatchString(n.Name) {
				return nil
			}
			wrapped := false
			for _, p := range path {
				if c, ok := p.(*parser.Call); ok && slices.Contains([]string{"rate", "irate", "increase"}, c.Func.Name) {
					wrapped = true
				}
			}
			require.True(t, wrapped, "query %q: counter %s is not inside rate()", e, n.Name)
		}
		return nil
	})
}
