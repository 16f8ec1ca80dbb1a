package alerting

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Route is a compiled node of the routing tree. Options a node does not set
// are inherited from its parent, as in Alertmanager.
type Route struct {
	parent *Route
	// ID is the node's position in the tree ("0", "0.1", ...), used in
	// error messages.
	ID string
	// Key names the node by its matcher path, as Alertmanager's route key
	// does: "{}" for the root, then "/{matchers}" for each level down. Group
	// keys carry it, so that the same alert routed twice forms two groups
	// and a key survives edits elsewhere in the tree (a sibling inserted
	// before it). A sibling with the same matchers as an earlier one gets
	// "/n", the number of such earlier siblings.
	Key                 string
	Receiver            string
	Matchers            Matchers
	GroupBy             []model.LabelName
	GroupByAll          bool
	GroupWait           time.Duration
	GroupInterval       time.Duration
	RepeatInterval      time.Duration
	Continue            bool
	MuteTimeIntervals   []string
	ActiveTimeIntervals []string
	Routes              []*Route
}

// newRoute compiles cfg under parent. intervals are the known time
// interval names.
func newRoute(cfg RouteConfig, parent *Route, intervals map[string]bool) (*Route, error) {
	r := &Route{parent: parent, ID: "0", Receiver: cfg.Receiver, Continue: cfg.Continue,
		MuteTimeIntervals: cfg.MuteTimeIntervals, ActiveTimeIntervals: cfg.ActiveTimeIntervals}
	if parent != nil {
		r.ID = fmt.Sprintf("%s.%d", parent.ID, len(parent.Routes))
		r.Receiver = or(cfg.Receiver, parent.Receiver)
		r.GroupBy, r.GroupByAll = parent.GroupBy, parent.GroupByAll
		r.GroupWait, r.GroupInterval, r.RepeatInterval = parent.GroupWait, parent.GroupInterval, parent.RepeatInterval
	} else if cfg.Continue {
		return nil, errors.New("the root route cannot have continue")
	} else if len(cfg.Matchers) > 0 {
		return nil, errors.New("the root route must not have matchers: it takes every alert")
	}
	ms, err := ParseMatchers(cfg.Matchers)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", r.ID, err)
	}
	r.Matchers = ms
	r.Key = "{}"
	if parent != nil {
		base := parent.Key + "/" + ms.String()
		r.Key = base
		same := 0
		for _, sib := range parent.Routes {
			if sib.parent.Key+"/"+sib.Matchers.String() == base {
				same++
			}
		}
		if same > 0 {
			r.Key = fmt.Sprintf("%s/%d", base, same)
		}
	}
	if cfg.GroupBy != nil {
		r.GroupBy, r.GroupByAll = nil, false
		for _, l := range cfg.GroupBy {
			if l == "..." {
				r.GroupByAll = true
				continue
			}
			if !model.UTF8Validation.IsValidLabelName(l) {
				return nil, fmt.Errorf("route %s: invalid group_by label %q", r.ID, l)
			}
			r.GroupBy = append(r.GroupBy, model.LabelName(l))
		}
	}
	if cfg.GroupWait > 0 {
		r.GroupWait = cfg.GroupWait
	}
	if cfg.GroupInterval > 0 {
		r.GroupInterval = cfg.GroupInterval
	}
	if cfg.RepeatInterval > 0 {
		r.RepeatInterval = cfg.RepeatInterval
	}
	if parent == nil && (r.GroupWait <= 0 || r.GroupInterval <= 0 || r.RepeatInterval <= 0) {
		return nil, errors.New("the root route needs positive group_wait, group_interval and repeat_interval")
	}
	for _, n := range append(append([]string(nil), r.MuteTimeIntervals...), r.ActiveTimeIntervals...) {
		if !intervals[n] {
			return nil, fmt.Errorf("route %s: unknown time interval %q", r.ID, n)
		}
	}
	for _, c := range cfg.Routes {
		child, err := newRoute(c, r, intervals)
		if err != nil {
			return nil, err
		}
		r.Routes = append(r.Routes, child)
	}
	return r, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Match returns the routes an alert with labels ls goes to: the deepest
// matching nodes, depth first, siblings tried in order until one matches
// without continue. The root always matches.
func (r *Route) Match(ls model.LabelSet) []*Route {
	if !r.Matchers.Matches(ls) {
		return nil
	}
	var all []*Route
	for _, c := range r.Routes {
		m := c.Match(ls)
		all = append(all, m...)
		if m != nil && !c.Continue {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, r)
	}
	return all
}

// Walk calls fn for r and every descendant.
func (r *Route) Walk(fn func(*Route)) {
	fn(r)
	for _, c := range r.Routes {
		c.Walk(fn)
	}
}

// groupLabels returns the labels of ls that define the alert's group.
func (r *Route) groupLabels(ls model.LabelSet) model.LabelSet {
	if r.GroupByAll {
		return ls.Clone()
	}
	out := model.LabelSet{}
	for _, l := range r.GroupBy {
		if v, ok := ls[l]; ok {
			out[l] = v
		}
	}
	return out
}

// groupKey identifies an aggregation group: the route's key and the group
// labels, in a stable, human-readable form (Alertmanager's style).
func (r *Route) groupKey(gl model.LabelSet) string { return r.Key + ":" + labelString(gl) }

// legacyGroupKey is the key older versions gave the group: the route's
// position instead of its matcher path.
func (r *Route) legacyGroupKey(gl model.LabelSet) string { return r.ID + ":" + labelString(gl) }

func labelString(gl model.LabelSet) string {
	names := make([]string, 0, len(gl))
	for n := range gl {
		names = append(names, string(n))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{")
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(string(gl[model.LabelName(n)])))
	}
	b.WriteByte('}')
	return b.String()
}
