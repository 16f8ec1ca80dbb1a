package alerting

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Alert is one alert as Alertmanager knows it: identified by its label set,
// active between StartsAt and EndsAt.
type Alert struct {
	Labels       model.LabelSet
	Annotations  model.LabelSet
	StartsAt     time.Time
	EndsAt       time.Time
	UpdatedAt    time.Time
	GeneratorURL string
	// Timeout is set when EndsAt was filled in from resolve_timeout rather
	// than given by the sender.
	Timeout bool
}

// Fingerprint identifies the alert by its labels.
func (a *Alert) Fingerprint() model.Fingerprint { return a.Labels.Fingerprint() }

// Resolved reports whether the alert has ended at the given instant.
func (a *Alert) Resolved(at time.Time) bool { return !a.EndsAt.IsZero() && !a.EndsAt.After(at) }

// Name is the alertname label.
func (a *Alert) Name() string { return string(a.Labels[model.AlertNameLabel]) }

// Validate checks an alert the way Alertmanager does, with its messages.
func (a *Alert) Validate() error {
	if a.StartsAt.IsZero() {
		return fmt.Errorf("start time missing")
	}
	if !a.EndsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
		return fmt.Errorf("start time must be before end time")
	}
	if len(a.Labels) == 0 {
		return fmt.Errorf("at least one label pair required")
	}
	if err := validateLabelSet(a.Labels); err != nil {
		return fmt.Errorf("invalid label set: %w", err)
	}
	if err := validateLabelSet(a.Annotations); err != nil {
		return fmt.Errorf("invalid annotations: %w", err)
	}
	return nil
}

func validateLabelSet(ls model.LabelSet) error {
	for ln, lv := range ls {
		if !model.UTF8Validation.IsValidLabelName(string(ln)) {
			return fmt.Errorf("invalid name %q", ln)
		}
		if !lv.IsValid() {
			return fmt.Errorf("invalid value %q", lv)
		}
	}
	return nil
}

// merge folds a re-sent alert o into the stored alert a, as Alertmanager's
// store does: the earliest start wins; a later explicit end time is not
// shortened by a timeout-derived one.
func (a *Alert) merge(o *Alert, now time.Time) *Alert {
	if o.UpdatedAt.Before(a.UpdatedAt) {
		return o.merge(a, now)
	}
	res := *o
	if a.StartsAt.Before(o.StartsAt) {
		res.StartsAt = a.StartsAt
	}
	if o.Resolved(now) {
		if a.Resolved(now) && a.EndsAt.After(o.EndsAt) {
			res.EndsAt = a.EndsAt
		}
	} else if a.EndsAt.After(o.EndsAt) && !a.Timeout {
		res.EndsAt = a.EndsAt
	}
	return &res
}

// overlaps reports whether o continues a (Alertmanager's condition) rather
// than being a new instance of an alert with the same labels.
func (a *Alert) overlaps(o *Alert) bool {
	return (o.EndsAt.After(a.StartsAt) && o.EndsAt.Before(a.EndsAt)) ||
		(o.StartsAt.After(a.StartsAt) && o.StartsAt.Before(a.EndsAt))
}

func cloneAlert(a *Alert) *Alert {
	c := *a
	c.Labels = a.Labels.Clone()
	c.Annotations = a.Annotations.Clone()
	return &c
}

// Matchers is a conjunction of label matchers.
type Matchers []*labels.Matcher

// Matches reports whether every matcher matches ls.
func (ms Matchers) Matches(ls model.LabelSet) bool {
	for _, m := range ms {
		if !m.Matches(string(ls[model.LabelName(m.Name)])) {
			return false
		}
	}
	return true
}

func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// ParseMatchers parses matchers in Alertmanager's syntax: each string is
// either one matcher (`severity="page"`) or a braced list
// (`{severity="page",slo=~"api-.*"}`).
func ParseMatchers(ss []string) (Matchers, error) {
	var out Matchers
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "{") {
			ms, err := labels.ParseMatchers(s)
			if err != nil {
				return nil, fmt.Errorf("bad matcher %q: %w", s, err)
			}
			out = append(out, ms...)
			continue
		}
		m, err := labels.ParseMatcher(s)
		if err != nil {
			return nil, fmt.Errorf("bad matcher %q: %w", s, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// sortedFingerprints returns the fingerprints of alerts in ascending order.
func sortedFingerprints(alerts []*Alert) []model.Fingerprint {
	fps := make([]model.Fingerprint, len(alerts))
	for i, a := range alerts {
		fps[i] = a.Fingerprint()
	}
	sort.Slice(fps, func(i, j int) bool { return fps[i] < fps[j] })
	return fps
}

func (ms Matchers) strings() []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
