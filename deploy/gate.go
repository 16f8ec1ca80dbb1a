// Package deploy answers deploy pipelines from the error budget: the gate
// (a decision pass, warn or fail per service, by an error-budget policy),
// the exceptions it records, deploy events and the post-deploy watch.
//
// A decision reads the SLO engine's latest evaluation, held in memory: the
// gate sends no query per request, so pipelines polling it cost nothing.
package deploy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// SLOState is what the gate reads of one SLO's latest evaluation.
type SLOState struct {
	ID string
	// BudgetRemaining is the share of the period's budget left (1 = all,
	// negative = overspent); NaN when unknown.
	BudgetRemaining float64
	// BurnRates by window; windows whose event count is too low to trust
	// are left out.
	BurnRates map[time.Duration]float64
	// Coverage is the share of the period that data covers (0..1); NaN
	// when the engine does not report it.
	Coverage    float64
	EvaluatedAt time.Time
	// Error is the latest evaluation's error, if it failed.
	Error string
	// InsufficientData is set while the period holds too little data for
	// a budget figure (its first minutes).
	InsufficientData bool
	// PageFiring lists the page alerts of this SLO that fire.
	PageFiring []string
}

// OpenIncident is an open incident of the service.
type OpenIncident struct {
	ID       string
	Severity string
	Title    string
}

// Snapshot is everything a decision for one service reads.
type Snapshot struct {
	Service   string
	SLOs      []SLOState
	Incidents []OpenIncident
}

// Source gives the gate its snapshots; it must answer from memory.
type Source interface {
	// Snapshot returns the service's state; ok is false for a service
	// with no SLO.
	Snapshot(service string) (s Snapshot, ok bool)
	// Services lists the services that have SLOs.
	Services() []string
}

// Check is one rule of the policy, as applied.
type Check struct {
	Rule    string  `json:"rule"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message"`
}

// Decision is the gate's answer. Its JSON is the contract pipelines read
// (Argo Rollouts' jsonPath `{$.decision}`, GitHub Actions' summary).
type Decision struct {
	Decision Outcome `json:"decision"`
	Service  string  `json:"service"`
	Version  string  `json:"version,omitempty"`
	// Reasons say why, one sentence each: every rule not met, then notes.
	Reasons []string `json:"reasons"`
	Checks  []Check  `json:"checks"`
	// BudgetRemaining is the lowest of the service's SLOs (null: unknown).
	BudgetRemaining jsonFloat `json:"budget_remaining"`
	// BurnRates is the highest burn rate per window across the SLOs.
	BurnRates map[string]float64 `json:"burn_rates"`
	// Coverage is the lowest data coverage across the SLOs.
	Coverage    jsonFloat  `json:"coverage"`
	Policy      string     `json:"policy"`
	EvaluatedAt time.Time  `json:"evaluated_at"`
	DataAge     float64    `json:"data_age_seconds"`
	Exception   *Exception `json:"exception,omitempty"`
	// Would is the decision the exception overrode.
	Would Outcome `json:"overridden_decision,omitempty"`
}

type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = jsonFloat(math.NaN())
		return nil
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = jsonFloat(v)
	return err
}

// Decide applies policy p to snapshot s at now. It is pure: the same
// inputs give the same decision.
func Decide(p Policy, s Snapshot, now time.Time) Decision {
	d := Decision{Service: s.Service, Decision: Pass, Policy: p.Source, BurnRates: map[string]float64{},
		BudgetRemaining: jsonFloat(math.NaN()), Coverage: jsonFloat(math.NaN()), Reasons: []string{}, Checks: []Check{}}
	add := func(rule string, o Outcome, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		d.Checks = append(d.Checks, Check{Rule: rule, Outcome: o, Message: msg})
		d.Decision = worse(d.Decision, o)
		if o != Pass {
			d.Reasons = append(d.Reasons, msg)
		}
	}

	// Data first: a decision on stale or failing data is no decision.
	budget, coverage := math.Inf(1), math.Inf(1)
	var young []string
	burns := map[time.Duration]float64{}
	var oldest time.Time
	stale := false
	for _, slo := range s.SLOs {
		if oldest.IsZero() || slo.EvaluatedAt.Before(oldest) {
			oldest = slo.EvaluatedAt
		}
		if slo.Error != "" {
			add("data", p.OnStale, "SLO %s cannot be evaluated: %s", slo.ID, slo.Error)
			stale = true
			continue
		}
		if slo.EvaluatedAt.IsZero() {
			add("data", p.OnStale, "SLO %s has not been evaluated yet", slo.ID)
			stale = true
			continue
		}
		if slo.InsufficientData {
			young = append(young, slo.ID)
		}
		if !math.IsNaN(slo.BudgetRemaining) {
			budget = math.Min(budget, slo.BudgetRemaining)
		}
		if !math.IsNaN(slo.Coverage) {
			coverage = math.Min(coverage, slo.Coverage)
		}
		for w, b := range slo.BurnRates {
			if cur, ok := burns[w]; !ok || b > cur {
				burns[w] = b
			}
		}
	}
	for w, b := range burns {
		d.BurnRates[model.Duration(w).String()] = b
	}
	if !oldest.IsZero() {
		d.EvaluatedAt = oldest.UTC()
		age := now.Sub(oldest)
		d.DataAge = math.Round(age.Seconds()*1000) / 1000
		if age > p.MaxDataAge && !stale {
			add("data", p.OnStale, "the newest SLO data is %s old, more than the %s the policy allows", roundDur(age), p.MaxDataAge)
			stale = true
		}
	}
	if len(s.SLOs) == 0 {
		add("data", p.OnStale, "service %s has no SLO to judge a deploy by", s.Service)
		stale = true
	}
	if !math.IsInf(budget, 1) {
		d.BudgetRemaining = jsonFloat(budget)
	}
	if !math.IsInf(coverage, 1) {
		d.Coverage = jsonFloat(coverage)
	}

	// Budget, trusted only when the period holds enough data.
	lowCoverage := p.MinCoverage > 0 && !math.IsInf(coverage, 1) && coverage < p.MinCoverage
	if lowCoverage {
		add("coverage", p.OnLowCoverage, "data covers %s of the period, less than the %s the policy needs to trust the budget", pct(coverage), pct(p.MinCoverage))
	}
	if len(young) > 0 {
		add("coverage", p.OnLowCoverage, "the period of %s holds too little data yet to judge its budget", strings.Join(young, ", "))
	}
	switch {
	case math.IsInf(budget, 1):
		if !stale && len(young) == 0 {
			add("budget", p.OnStale, "no SLO of %s reports its remaining budget", s.Service)
		}
	case budget < p.MinBudgetRemaining || budget <= 0:
		add("budget", Fail, "error budget remaining %s is below the policy minimum of %s", pct(budget), pct(p.MinBudgetRemaining))
	case p.WarnBudgetRemaining > 0 && budget < p.WarnBudgetRemaining:
		add("budget", Warn, "error budget remaining %s is below the warning level of %s", pct(budget), pct(p.WarnBudgetRemaining))
	default:
		add("budget", Pass, "error budget remaining %s (minimum %s)", pct(budget), pct(p.MinBudgetRemaining))
	}

	// Burn rates, worst window first.
	burnRule := func(limits map[time.Duration]float64, o Outcome, level string) bool {
		windows := make([]time.Duration, 0, len(limits))
		for w := range limits {
			windows = append(windows, w)
		}
		slices.Sort(windows)
		hit := false
		for _, w := range windows {
			k := model.Duration(w).String()
			b, ok := d.BurnRates[k]
			if !ok {
				continue
			}
			if b > limits[w] {
				add("burn_rate", o, "the %s burn rate is %s, above the %s of %s", k, fmtBurn(b), level, fmtBurn(limits[w]))
				hit = true
			}
		}
		return hit
	}
	if !burnRule(p.MaxBurnRate, Fail, "maximum") {
		burnRule(p.WarnBurnRate, Warn, "warning level")
	}

	// Freezes.
	if p.FreezeOnPage {
		var pages []string
		for _, slo := range s.SLOs {
			pages = append(pages, slo.PageFiring...)
		}
		sort.Strings(pages)
		if len(pages) > 0 {
			add("freeze", Fail, "page alert firing: %s", strings.Join(slices.Compact(pages), ", "))
		}
	}
	for _, inc := range s.Incidents {
		if slices.Contains(p.FreezeOnIncident, strings.ToUpper(inc.Severity)) {
			add("freeze", Fail, "%s incident %s is open: %s", strings.ToUpper(inc.Severity), inc.ID, inc.Title)
		}
	}
	for _, fw := range p.FreezeWindows {
		if start, end, ok := fw.Active(now); ok {
			add("freeze", Fail, "deploy freeze %q from %s until %s", fw.Name,
				start.Format("Mon 2006-01-02 15:04 MST"), end.Format("Mon 2006-01-02 15:04 MST"))
		}
	}
	return d
}

// applyException turns a failed (or warned) decision into a pass, keeping
// what it would have been and why.
func (d *Decision) applyException(e *Exception) {
	d.Exception = e
	if d.Decision == Pass {
		return
	}
	d.Would = d.Decision
	d.Decision = Pass
	d.Reasons = append(d.Reasons, fmt.Sprintf("passed by %s exception %s recorded by %s: %s", e.Kind, e.ID, e.Author, e.Reason))
}

func pct(v float64) string {
	switch {
	case math.IsNaN(v):
		return "unknown"
	case math.Abs(v) < 0.0001 && v != 0:
		return fmt.Sprintf("%.4f%%", v*100)
	}
	return fmt.Sprintf("%.2f%%", v*100)
}

func fmtBurn(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func roundDur(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
