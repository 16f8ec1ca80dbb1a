package sloengine

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
)

// TierState is one multi-window burn-rate tier of one SLO at one
// evaluation: the tier the engine evaluates (its own, the alerting
// configuration's override, or the default) and the one decision of
// whether it fires. The API's `firing` and the alert rules both read it,
// so the page and the API cannot disagree.
type TierState struct {
	Tier
	// Threshold is the error ratio both windows must exceed: Factor x budget.
	Threshold float64
	// Held is true when a window has too few events (fewer than min_events,
	// or none): the burn rate is too noisy to page on.
	Held bool
	// Firing is true when neither window is held, both are measured (their
	// series exist and the ratio is known) and both error ratios exceed
	// Threshold.
	Firing bool
}

// decideTier is the firing decision of tier t over its long and short
// windows for an SLO with error budget eb. A window is measured when its
// series exist, its ratio is known and it counted events (or does not
// count them, a raw error-ratio SLI); a window the engine did not evaluate
// is not measured.
func decideTier(t Tier, long, short WindowStatus, eb float64) TierState {
	ts := TierState{Tier: t, Threshold: round15(t.Factor * eb)}
	ts.Held = long.LowTraffic || short.LowTraffic
	ts.Firing = !ts.Held && long.measured() && short.measured() &&
		float64(long.ErrorRatio) > ts.Threshold && float64(short.ErrorRatio) > ts.Threshold
	return ts
}

// EvaluateTiers decides every tier over windows for an SLO with error
// budget eb, as the engine does each evaluation: the one firing decision,
// exported so that the consumers' tests build the snapshots the engine
// would.
func EvaluateTiers(tiers []Tier, windows []WindowStatus, eb float64) []TierState {
	find := func(d time.Duration) WindowStatus {
		for _, w := range windows {
			if w.Length == d {
				return w
			}
		}
		return WindowStatus{}
	}
	out := make([]TierState, 0, len(tiers))
	for _, t := range tiers {
		out = append(out, decideTier(t, find(t.LongWindow), find(t.ShortWindow), eb))
	}
	return out
}

// measured reports whether the window has a burn rate worth alerting on.
func (w WindowStatus) measured() bool {
	r, total := float64(w.ErrorRatio), float64(w.TotalEvents)
	return !w.NoData && w.Length > 0 && !math.IsNaN(r) && (total > 0 || math.IsNaN(total))
}

// tierView is the JSON form of a TierState, windows as PromQL durations.
type tierView struct {
	Name          string  `json:"name"`
	Severity      string  `json:"severity"`
	LongWindow    string  `json:"long_window"`
	ShortWindow   string  `json:"short_window"`
	BudgetPercent float64 `json:"budget_percent"`
	Factor        float64 `json:"factor"`
	Threshold     float64 `json:"threshold"`
	Firing        bool    `json:"firing"`
	Held          bool    `json:"held"`
}

// MarshalJSON writes the tier as the API shows it.
func (t TierState) MarshalJSON() ([]byte, error) {
	return json.Marshal(tierView{Name: t.Name, Severity: t.Severity, LongWindow: FormatWindow(t.LongWindow), ShortWindow: FormatWindow(t.ShortWindow),
		BudgetPercent: t.BudgetPercent, Factor: t.Factor, Threshold: t.Threshold, Firing: t.Firing, Held: t.Held})
}

// UnmarshalJSON reads the API's form back (the CLI does).
func (t *TierState) UnmarshalJSON(b []byte) error {
	var v tierView
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	long, err := model.ParseDuration(v.LongWindow)
	if err != nil {
		return fmt.Errorf("tier long_window: %w", err)
	}
	short, err := model.ParseDuration(v.ShortWindow)
	if err != nil {
		return fmt.Errorf("tier short_window: %w", err)
	}
	*t = TierState{Tier: Tier{Name: v.Name, Severity: v.Severity, LongWindow: time.Duration(long), ShortWindow: time.Duration(short),
		BudgetPercent: v.BudgetPercent, Factor: v.Factor}, Threshold: v.Threshold, Firing: v.Firing, Held: v.Held}
	return nil
}

// nameSpecTiers names the tiers an SLO spec lists (or trims, disabling page
// or ticket alerts) as alerts have always been labelled: the default names
// when they are exactly the default tiers, else severity-long/short for
// every one, so that upgrading does not relabel, and re-page, an alert.
func nameSpecTiers(tiers []Tier, period time.Duration) {
	def := DefaultTiers(period)
	same := len(def) == len(tiers)
	for i := 0; same && i < len(def); i++ {
		t := tiers[i]
		same = t.Severity == def[i].Severity && t.LongWindow == def[i].LongWindow && t.ShortWindow == def[i].ShortWindow &&
			math.Abs(t.Factor-def[i].Factor) < 1e-9
	}
	for i := range tiers {
		if same {
			tiers[i].Name = def[i].Name
		} else {
			tiers[i].Name = tiers[i].Severity + "-" + FormatWindow(tiers[i].LongWindow) + "/" + FormatWindow(tiers[i].ShortWindow)
		}
	}
}

// TierSpec configures a tier. Factor, when zero, is derived from
// BudgetPercent and the SLO's period: Factor = percent/100 * period / long.
type TierSpec struct {
	Name          string
	Severity      string
	LongWindow    time.Duration
	ShortWindow   time.Duration
	BudgetPercent float64
	Factor        float64
}

// TiersFor returns the tiers of specs for an SLO of the given period.
func TiersFor(specs []TierSpec, period time.Duration) []Tier {
	out := make([]Tier, 0, len(specs))
	for _, sp := range specs {
		var t Tier
		if sp.Factor > 0 {
			t = Tier{Name: tierName(sp.Severity, sp.LongWindow, sp.ShortWindow), Severity: sp.Severity, LongWindow: sp.LongWindow,
				ShortWindow: sp.ShortWindow, Factor: sp.Factor, BudgetPercent: sp.Factor * float64(sp.LongWindow) / float64(period) * 100}
		} else {
			t = newTier(sp.Severity, sp.LongWindow, sp.ShortWindow, sp.BudgetPercent, period)
		}
		if sp.Name != "" {
			t.Name = sp.Name
		}
		out = append(out, t)
	}
	return out
}

// TierOverrides replace the default tiers of SLOs whose spec does not list
// its own (SLO.OwnTiers): the alerting configuration's
// `alerting.rules.tiers` and `alerting.rules.slos.<id>.tiers`. An SLO's
// tiers are, in order of precedence, its spec's, SLOs[id], Default, and
// the defaults (DefaultTiers).
type TierOverrides struct {
	// Default replaces the default tiers of every SLO; nil keeps them.
	Default []TierSpec
	// SLOs replaces them for single SLOs, by SLO ID.
	SLOs map[string][]TierSpec
}

// Validate reports the first tier that the engine cannot evaluate.
func (o TierOverrides) Validate() error {
	check := func(p string, specs []TierSpec) error {
		seen := map[string]bool{}
		for i, sp := range specs {
			name := sp.Name
			if name == "" {
				name = fmt.Sprint(i)
			}
			switch {
			case seen[name]:
				return fmt.Errorf("%s: tier %s: names must be unique", p, name)
			case sp.Severity == "":
				return fmt.Errorf("%s: tier %s: severity must be set", p, name)
			case !windowFor(sp.LongWindow):
				return fmt.Errorf("%s: tier %s: long_window %s is not an evaluated window (%s)", p, name, FormatWindow(sp.LongWindow), windowNames())
			case !windowFor(sp.ShortWindow):
				return fmt.Errorf("%s: tier %s: short_window %s is not an evaluated window (%s)", p, name, FormatWindow(sp.ShortWindow), windowNames())
			case sp.ShortWindow > sp.LongWindow:
				return fmt.Errorf("%s: tier %s: short_window must not be longer than long_window", p, name)
			case !(sp.Factor > 0 || sp.BudgetPercent > 0) || sp.Factor < 0 || sp.BudgetPercent < 0:
				return fmt.Errorf("%s: tier %s: set factor or budget_percent (positive)", p, name)
			}
			seen[name] = true
		}
		return nil
	}
	if err := check("tiers", o.Default); err != nil {
		return err
	}
	for id, specs := range o.SLOs {
		if err := check("slos."+id+".tiers", specs); err != nil {
			return err
		}
	}
	return nil
}

// Apply sets the tiers of every SLO of slos that does not list its own, as
// the engine does at start (Options.Tiers): for the commands that export
// rules and dashboards without running the engine.
func (o TierOverrides) Apply(slos []*SLO) {
	for _, s := range slos {
		o.apply(s)
	}
}

// apply sets the tiers of s unless its spec lists its own. Severities the
// spec disabled (page_alert.disable, ticket_alert.disable) stay disabled.
func (o TierOverrides) apply(s *SLO) {
	if s.OwnTiers {
		return
	}
	specs, ok := o.SLOs[s.ID]
	if !ok {
		specs = o.Default
	}
	if specs == nil {
		return
	}
	tiers := TiersFor(specs, s.Period)
	s.Tiers = s.Tiers[:0:0]
	for _, t := range tiers {
		if !s.disabledSeverity[t.Severity] {
			s.Tiers = append(s.Tiers, t)
		}
	}
}
