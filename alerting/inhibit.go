package alerting

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// inhibitRule mutes target alerts while a source alert with the same values
// of the equal labels fires.
type inhibitRule struct {
	source, target Matchers
	equal          []model.LabelName
}

// Inhibitor evaluates inhibition rules against a snapshot of firing alerts.
type Inhibitor struct {
	rules []inhibitRule
}

func newInhibitor(cfgs []InhibitRuleConfig) (*Inhibitor, error) {
	in := &Inhibitor{}
	for i, c := range cfgs {
		src, err := ParseMatchers(c.SourceMatchers)
		if err != nil {
			return nil, fmt.Errorf("rule %d: source_matchers: %w", i, err)
		}
		tgt, err := ParseMatchers(c.TargetMatchers)
		if err != nil {
			return nil, fmt.Errorf("rule %d: target_matchers: %w", i, err)
		}
		if len(src) == 0 || len(tgt) == 0 {
			return nil, fmt.Errorf("rule %d: source_matchers and target_matchers must not be empty", i)
		}
		r := inhibitRule{source: src, target: tgt}
		for _, l := range c.Equal {
			r.equal = append(r.equal, model.LabelName(l))
		}
		in.rules = append(in.rules, r)
	}
	return in, nil
}

// inhibitions is the state of every rule at one instant: for each rule, the
// firing source alerts by the values of the equal labels. Building it once
// per flush keeps the check of each alert O(rules) instead of O(alerts).
type inhibitions struct {
	rules   []inhibitRule
	sources []map[string][]inhibitSource
}

// inhibitSource is a firing alert matching a rule's source side.
type inhibitSource struct {
	fp model.Fingerprint
	// alsoTarget is set when the alert matches the target side too.
	alsoTarget bool
}

func equalKey(ls model.LabelSet, names []model.LabelName) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(string(ls[n]))
		b.WriteByte(0xff)
	}
	return b.String()
}

// snapshot indexes the alerts firing at now.
func (in *Inhibitor) snapshot(alerts []*Alert, now time.Time) *inhibitions {
	s := &inhibitions{rules: in.rules, sources: make([]map[string][]inhibitSource, len(in.rules))}
	for i, r := range in.rules {
		m := map[string][]inhibitSource{}
		for _, a := range alerts {
			if a.Resolved(now) || !r.source.Matches(a.Labels) {
				continue
			}
			k := equalKey(a.Labels, r.equal)
			m[k] = append(m[k], inhibitSource{fp: a.Fingerprint(), alsoTarget: r.target.Matches(a.Labels)})
		}
		s.sources[i] = m
	}
	return s
}

// inhibitedBy returns the fingerprints of the firing alerts that mute a.
// As in Alertmanager, when a matches both sides of a rule, alerts that
// match both sides too are not its sources: two alerts of the same kind
// (NodeDown for two jobs of one instance) do not mute each other.
func (s *inhibitions) inhibitedBy(a *Alert) []string {
	if s == nil {
		return nil
	}
	var out []string
	fp := a.Fingerprint()
	for i, r := range s.rules {
		if !r.target.Matches(a.Labels) {
			continue
		}
		twoSided := r.source.Matches(a.Labels)
		for _, src := range s.sources[i][equalKey(a.Labels, r.equal)] {
			if src.fp == fp || (twoSided && src.alsoTarget) {
				continue
			}
			out = append(out, src.fp.String())
		}
	}
	return out
}
