package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/util/jsonpath"

	"github.com/burnrate/burnrate/deploy"
)

// analysisTemplate is the part of Argo Rollouts' AnalysisTemplate that the
// web metric provider reads.
type analysisTemplate struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Metrics []struct {
			Name             string `yaml:"name"`
			SuccessCondition string `yaml:"successCondition"`
			FailureCondition string `yaml:"failureCondition"`
			Provider         struct {
				Web struct {
					URL      string `yaml:"url"`
					JSONPath string `yaml:"jsonPath"`
					Method   string `yaml:"method"`
					Headers  []struct {
						Key   string `yaml:"key"`
						Value string `yaml:"value"`
					} `yaml:"headers"`
				} `yaml:"web"`
			} `yaml:"provider"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

// Argo Rollouts' analysis phases.
const (
	phaseSuccessful   = "Successful"
	phaseFailed       = "Failed"
	phaseInconclusive = "Inconclusive"
	phaseError        = "Error"
)

// argoMeasure follows Argo Rollouts' web metric provider and its condition
// evaluation: a non-2xx answer is an Error; the body is decoded as JSON
// (numbers as float64); the first jsonPath match is the result, none is an
// Error; then successCondition and failureCondition are expr-lang
// expressions over result, combined as Argo combines them.
func argoMeasure(t *testing.T, resp *http.Response, jsonPath, success, failure string) (string, any) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return phaseError, nil
	}
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		return phaseError, nil
	}
	if jsonPath == "" {
		jsonPath = "{$}"
	}
	jp := jsonpath.New("metrics")
	require.NoError(t, jp.Parse(jsonPath))
	results, err := jp.FindResults(data)
	if err != nil || len(results) == 0 || len(results[0]) == 0 {
		return phaseError, nil
	}
	result := results[0][0].Interface()
	eval := func(cond string) (bool, error) {
		env := map[string]any{
			"result": result,
			"asInt": func(in string) int64 {
				v, err := strconv.ParseInt(in, 10, 64)
				if err != nil {
					panic(err)
				}
				return v
			},
			"asFloat": func(in string) float64 {
				v, err := strconv.ParseFloat(in, 64)
				if err != nil {
					panic(err)
				}
				return v
			},
		}
		prog, err := expr.Compile(cond, expr.Env(env), expr.AsBool())
		if err != nil {
			return false, err
		}
		out, err := expr.Run(prog, env)
		if err != nil {
			return false, err
		}
		return out.(bool), nil
	}
	var ok, bad bool
	if success != "" {
		if ok, err = eval(success); err != nil {
			return phaseError, result
		}
	}
	if failure != "" {
		if bad, err = eval(failure); err != nil {
			return phaseError, result
		}
	}
	switch {
	case success == "" && failure == "":
		return phaseSuccessful, result
	case failure == "":
		bad = !ok
	case success == "":
		ok = !bad
	}
	switch {
	case bad:
		return phaseFailed, result
	case !ok:
		return phaseInconclusive, result
	}
	return phaseSuccessful, result
}

func TestArgoRolloutsTemplateReadsTheGateDecision(t *testing.T) {
	raw, err := os.ReadFile("../docs/examples/argo-analysistemplate.yaml")
	require.NoError(t, err)
	var tmpl analysisTemplate
	require.NoError(t, yaml.Unmarshal(raw, &tmpl))
	require.Equal(t, "AnalysisTemplate", tmpl.Kind)
	require.Len(t, tmpl.Spec.Metrics, 1)
	m := tmpl.Spec.Metrics[0]
	require.Contains(t, m.Provider.Web.URL, "/api/v1/gate?service={{args.service}}")

	warnAt := deploy.DefaultPolicy()
	warnAt.WarnBudgetRemaining = 0.1
	f := newGate(t, "tok", warnAt)
	url := strings.NewReplacer("http://burnrate.monitoring.svc:8080", f.srv.URL,
		"{{args.service}}", "checkout", "{{args.version}}", "v3").Replace(m.Provider.Web.URL)
	cases := []struct {
		name   string
		state  func(*deploy.SLOState)
		phase  string
		result string
	}{
		{"a pass is Successful", func(*deploy.SLOState) {}, phaseSuccessful, "pass"},
		{"a warn is Inconclusive: Argo pauses for a person", func(s *deploy.SLOState) { s.BudgetRemaining = 0.05 }, phaseInconclusive, "warn"},
		{"a fail is Failed, not an Error", func(s *deploy.SLOState) { s.BudgetRemaining = -1 }, phaseFailed, "fail"},
		{"absent SLI data is Failed, never Successful", func(s *deploy.SLOState) { s.Absent = true }, phaseFailed, "fail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy("checkout-availability")
			tc.state(&s)
			f.src.set("checkout", s)
			req, err := http.NewRequest(http.MethodGet, url, nil)
			require.NoError(t, err)
			for _, h := range m.Provider.Web.Headers {
				req.Header.Set(h.Key, strings.ReplaceAll(h.Value, "{{args.burnrate-token}}", "tok"))
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			phase, result := argoMeasure(t, resp, m.Provider.Web.JSONPath, m.SuccessCondition, m.FailureCondition)
			require.Equal(t, tc.phase, phase)
			require.Equal(t, tc.result, result)
		})
	}
	// strict=true turns a warning into a fail in the decision Argo reads.
	t.Run("strict=true makes a warn Failed", func(t *testing.T) {
		s := healthy("checkout-availability")
		s.BudgetRemaining = 0.05
		f.src.set("checkout", s)
		req, err := http.NewRequest(http.MethodGet, url+"&strict=true", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		phase, result := argoMeasure(t, resp, m.Provider.Web.JSONPath, m.SuccessCondition, m.FailureCondition)
		require.Equal(t, phaseFailed, phase)
		require.Equal(t, "fail", result)
	})
	require.Contains(t, string(raw), "inconclusiveLimit: 0", "the first Inconclusive pauses the rollout")

	// Without the token the measurement is an Error, which Argo retries
	// (consecutiveErrorLimit) instead of failing the rollout.
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	phase, _ := argoMeasure(t, resp, m.Provider.Web.JSONPath, m.SuccessCondition, m.FailureCondition)
	require.Equal(t, phaseError, phase)
}

// flaggerWebhook is one webhook of the example canary.
type flaggerWebhook struct {
	Name     string            `yaml:"name"`
	Type     string            `yaml:"type"`
	URL      string            `yaml:"url"`
	Metadata map[string]string `yaml:"metadata"`
}

// flaggerCall posts Flagger's webhook payload and applies Flagger's rule:
// only 200-202 passes.
func flaggerCall(t *testing.T, srv string, h flaggerWebhook) bool {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"name": "checkout", "namespace": "shop", "phase": "Progressing",
		"checksum": "6d4b9c", "metadata": h.Metadata,
	})
	require.NoError(t, err)
	url := strings.Replace(h.URL, "http://burnrate.monitoring.svc:8080", srv, 1)
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode >= 200 && resp.StatusCode <= 202
}

func TestFlaggerHooksFollowFlaggersContract(t *testing.T) {
	raw, err := os.ReadFile("../docs/examples/flagger-canary.yaml")
	require.NoError(t, err)
	var canary struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Analysis struct {
				Webhooks []flaggerWebhook `yaml:"webhooks"`
			} `yaml:"analysis"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &canary))
	require.Equal(t, "Canary", canary.Kind)
	hooks := map[string]flaggerWebhook{}
	for _, h := range canary.Spec.Analysis.Webhooks {
		hooks[h.Type] = h
	}
	require.ElementsMatch(t, []string{"confirm-rollout", "pre-rollout", "confirm-promotion", "rollback"}, keys(hooks))

	f := newGate(t, "")
	for _, tc := range []struct {
		budget float64
		// Flagger's reading of each hook: whether it passed. For
		// confirm-* a failure halts (waits); for pre-rollout it counts
		// toward the threshold; for rollback a pass TRIGGERS the rollback.
		want map[string]bool
	}{
		{budget: 0.8, want: map[string]bool{"confirm-rollout": true, "pre-rollout": true, "confirm-promotion": true, "rollback": false}},
		{budget: -0.2, want: map[string]bool{"confirm-rollout": false, "pre-rollout": false, "confirm-promotion": false, "rollback": true}},
	} {
		t.Run(fmt.Sprintf("budget %g", tc.budget), func(t *testing.T) {
			s := healthy("checkout-availability")
			s.BudgetRemaining = tc.budget
			f.src.set("checkout", s)
			for typ, want := range tc.want {
				require.Equal(t, want, flaggerCall(t, f.srv.URL, hooks[typ]), typ)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFlaggersRollbackHookRollsBackOnlyForWhatTheCanaryCaused drives the
// example canary's rollback hook through a canary's life: Flagger rolls
// back on any 2xx, so stale data, a freeze that opened mid-canary and an
// incident open before it started must answer non-2xx; a burn rate or a
// budget that turns bad during the canary must answer 200.
func TestFlaggersRollbackHookRollsBackOnlyForWhatTheCanaryCaused(t *testing.T) {
	raw, err := os.ReadFile("../docs/examples/flagger-canary.yaml")
	require.NoError(t, err)
	var canary struct {
		Spec struct {
			Analysis struct {
				Webhooks []flaggerWebhook `yaml:"webhooks"`
			} `yaml:"analysis"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &canary))
	var rollback flaggerWebhook
	for _, h := range canary.Spec.Analysis.Webhooks {
		if h.Type == "rollback" {
			rollback = h
		}
	}
	require.NotEmpty(t, rollback.URL)

	p := deploy.DefaultPolicy()
	p.Service = "checkout"
	p.MaxBurnRate = map[time.Duration]float64{5 * time.Minute: 14.4}
	ps, err := deploy.ParsePolicies("p.yml", []byte(`
policies:
  - service: x
    freeze_windows:
      - {name: release freeze, timezone: UTC, from: "2026-12-01 12:10", to: "2026-12-01 13:00"}
`))
	require.NoError(t, err)
	p.FreezeWindows = ps[0].FreezeWindows

	with := func(f func(*deploy.SLOState)) deploy.SLOState {
		s := healthy("checkout-availability")
		f(&s)
		return s
	}
	steps := []struct {
		name     string
		after    time.Duration // since the canary started at t0
		snap     deploy.Snapshot
		rollback bool
	}{
		{name: "a canary starting while a SEV2 incident is open is not rolled back", after: 0,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{healthy("checkout-availability")},
				Incidents: []deploy.OpenIncident{{ID: "3", Severity: "SEV2", Title: "old trouble"}}}},
		{name: "stale data rolls nothing back", after: 2 * time.Minute,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{with(func(s *deploy.SLOState) { s.Absent = true })}}},
		{name: "a freeze window that opens mid-canary rolls nothing back", after: 11 * time.Minute,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{healthy("checkout-availability")}}},
		{name: "a burn rate the canary raised above the maximum rolls it back", after: 12 * time.Minute, rollback: true,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{with(func(s *deploy.SLOState) { s.BurnRates[5*time.Minute] = 30 })}}},
		{name: "a budget the canary spent rolls it back", after: 13 * time.Minute, rollback: true,
			snap: deploy.Snapshot{Service: "checkout", SLOs: []deploy.SLOState{with(func(s *deploy.SLOState) { s.BudgetRemaining = -0.1 })}}},
	}
	f := newGate(t, "", p)
	for _, st := range steps {
		f.now = t0.Add(st.after)
		for i := range st.snap.SLOs {
			st.snap.SLOs[i].EvaluatedAt = f.now.Add(-5 * time.Second)
		}
		f.src.mu.Lock()
		f.src.snaps["checkout"] = st.snap
		f.src.mu.Unlock()
		require.Equal(t, st.rollback, flaggerCall(t, f.srv.URL, rollback), st.name)
	}

	// A canary that starts with the burn rate already above the maximum
	// did not cause it.
	g := newGate(t, "", p)
	g.src.set("checkout", with(func(s *deploy.SLOState) { s.BurnRates[5*time.Minute] = 30 }))
	require.False(t, flaggerCall(t, g.srv.URL, rollback), "a burn rate that was above the maximum before the canary")
}
