package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Verdicts of the post-deploy watch.
const (
	Promote  = "promote"
	Rollback = "rollback"
	// Wait: too little time has passed since the deploy started.
	Wait = "wait"
	// Inconclusive: the watch cannot judge the deploy, for want of a
	// baseline or of data after it; never read as a pass or a zero.
	Inconclusive = "inconclusive"
)

// Watch thresholds: a deploy is rolled back when an SLO's burn rate after
// it is above 1 (spending faster than the period allows) and more than
// twice its burn rate before, or above the policy's maximum for the watch
// window and higher than before. A deploy under which the burn went down
// is never rolled back, whatever the policy maximum.
const (
	watchMinBurn = 1.0
	watchRatio   = 2.0
	// watchMinObserved is how much time after a deploy's start the first
	// verdict needs (the watch window, when shorter).
	watchMinObserved = time.Minute
)

// History reads a service's SLIs over past windows from the TSDB: the
// watch's baseline is the window before a deploy started, whenever the
// deploy was marked.
type History interface {
	// Burn returns the burn rate of each SLO of service over the window of
	// length w ending at at.
	Burn(ctx context.Context, service string, w time.Duration, at time.Time) ([]WindowBurn, error)
}

// WindowBurn is one SLO's burn rate over one window.
type WindowBurn struct {
	SLO      string
	BurnRate float64
	// NoData: the SLI's series do not exist over the window.
	NoData bool
	// LowTraffic: too few events over the window to trust a burn rate.
	LowTraffic bool
}

// Interval is a span of time the watch read.
type Interval struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (i Interval) String() string {
	return i.From.UTC().Format("15:04:05") + "–" + i.To.UTC().Format("15:04:05 UTC")
}

// SLOVerdict is the watch's comparison for one SLO.
type SLOVerdict struct {
	SLO     string    `json:"slo"`
	Verdict string    `json:"verdict"`
	Before  jsonFloat `json:"before_burn_rate"`
	After   jsonFloat `json:"after_burn_rate"`
	Message string    `json:"message"`
}

// Verdict compares the burn rate after a deploy with the burn rate before
// it, per SLO of the service.
type Verdict struct {
	Verdict string `json:"verdict"`
	Deploy  Deploy `json:"deploy"`
	// Window is the watch window: the baseline's length, and the longest
	// the observed span gets.
	Window string `json:"window,omitempty"`
	// Baseline is the window before the deploy started; Observed the span
	// after it that was compared with it.
	Baseline *Interval `json:"baseline,omitempty"`
	Observed *Interval `json:"observed,omitempty"`
	// SupersededBy is the next deploy of the service, whose start ends
	// this deploy's watch: a fault after it is not this deploy's.
	SupersededBy *Deploy `json:"superseded_by,omitempty"`
	// Before and After are the deciding SLO's burn rates.
	Before  jsonFloat    `json:"before_burn_rate"`
	After   jsonFloat    `json:"after_burn_rate"`
	SLOs    []SLOVerdict `json:"slos"`
	Message string       `json:"message"`
}

// ErrNoHistory is returned by Verify when the gate has no History.
var ErrNoHistory = errors.New("the post-deploy watch has no SLI history to read")

// Verify decides whether deploy d should be promoted or rolled back: it
// compares each SLO's burn rate over the watch window before d started
// with its burn rate after, up to now, the start of the service's next
// deploy or the end of the watch span, whichever is first.
func (g *Gate) Verify(ctx context.Context, d Deploy) (Verdict, error) {
	if g.opts.History == nil {
		return Verdict{}, ErrNoHistory
	}
	v := Verdict{Deploy: d, Before: jsonFloat(math.NaN()), After: jsonFloat(math.NaN()), SLOs: []SLOVerdict{}}
	w := g.opts.WatchWindow
	v.Window = model.Duration(w).String()
	end := g.opts.Now()
	if span := d.StartedAt.Add(g.opts.WatchSpan); end.After(span) {
		end = span
	}
	next, ok, err := g.opts.Store.NextDeploy(ctx, d)
	if err != nil {
		return v, err
	}
	if ok && next.StartedAt.Before(end) {
		end = next.StartedAt
		v.SupersededBy = &next
	}
	elapsed := end.Sub(d.StartedAt)
	if need := min(w, watchMinObserved); elapsed < need {
		v.Verdict = Wait
		v.Message = fmt.Sprintf("deploy %s started %s ago; the first verdict needs %s after it", d.Version, roundDur(max(elapsed, 0)), need)
		if v.SupersededBy != nil {
			v.Verdict = Inconclusive
			v.Message = fmt.Sprintf("deploy %s was followed by %s after %s, before %s of it could be judged", d.Version, next.Version, roundDur(elapsed), need)
		}
		return v, nil
	}
	observed := min(w, elapsed)
	v.Baseline = &Interval{From: d.StartedAt.Add(-w).UTC(), To: d.StartedAt.UTC()}
	v.Observed = &Interval{From: end.Add(-observed).UTC(), To: end.UTC()}
	before, err := g.opts.History.Burn(ctx, d.Service, w, d.StartedAt)
	if err != nil {
		return v, fmt.Errorf("burn rates before deploy %s: %w", d.ID, err)
	}
	after, err := g.opts.History.Burn(ctx, d.Service, observed, end)
	if err != nil {
		return v, fmt.Errorf("burn rates after deploy %s: %w", d.ID, err)
	}
	limit, hasLimit := g.opts.Policies.For(d.Service).MaxBurnRate[w]
	judge(&v, before, after, limit, hasLimit)
	return v, nil
}

// judge fills v from the burn rates before and after, SLO by SLO: the
// worst SLO decides (rollback, then inconclusive, then promote).
func judge(v *Verdict, before, after []WindowBurn, limit float64, hasLimit bool) {
	bySLO := map[string]WindowBurn{}
	for _, b := range before {
		bySLO[b.SLO] = b
	}
	sort.Slice(after, func(i, j int) bool { return after[i].SLO < after[j].SLO })
	var decider *SLOVerdict
	rank := map[string]int{Promote: 0, Inconclusive: 1, Rollback: 2}
	worstRatio := -1.0
	for _, a := range after {
		b, ok := bySLO[a.SLO]
		s := SLOVerdict{SLO: a.SLO, Before: jsonFloat(math.NaN()), After: jsonFloat(math.NaN())}
		switch {
		case a.NoData:
			s.Verdict = Inconclusive
			s.Message = fmt.Sprintf("no verdict for SLO %s: its SLI has no data %s", a.SLO, v.Observed)
		case a.LowTraffic:
			s.Verdict = Inconclusive
			s.Message = fmt.Sprintf("no verdict for SLO %s: too few events %s to judge", a.SLO, v.Observed)
		case !ok || b.NoData || b.LowTraffic:
			s.Verdict = Inconclusive
			s.After = jsonFloat(a.BurnRate)
			s.Message = fmt.Sprintf("no verdict for SLO %s: no baseline, its SLI has no data over the %s before the deploy (%s); burn rate after is %s",
				a.SLO, v.Window, v.Baseline, fmtBurn(a.BurnRate))
		default:
			s.Before, s.After = jsonFloat(b.BurnRate), jsonFloat(a.BurnRate)
			verb := "kept"
			switch {
			case a.BurnRate > b.BurnRate*1.05:
				verb = "raised"
			case a.BurnRate < b.BurnRate*0.95:
				verb = "lowered"
			}
			s.Message = fmt.Sprintf("deploy %s %s the burn rate of SLO %s from %s over the %s before it (%s) to %s (%s)",
				v.Deploy.Version, verb, a.SLO, fmtBurn(b.BurnRate), v.Window, v.Baseline, fmtBurn(a.BurnRate), v.Observed)
			switch {
			case a.BurnRate > watchMinBurn && a.BurnRate > watchRatio*b.BurnRate:
				s.Verdict = Rollback
			case hasLimit && a.BurnRate > limit && a.BurnRate > b.BurnRate:
				s.Verdict = Rollback
				s.Message += fmt.Sprintf(", above the policy maximum of %s", fmtBurn(limit))
			default:
				s.Verdict = Promote
			}
		}
		v.SLOs = append(v.SLOs, s)
		cur := &v.SLOs[len(v.SLOs)-1]
		ratio := float64(cur.After) / math.Max(float64(cur.Before), 1e-9)
		if decider == nil || rank[s.Verdict] > rank[decider.Verdict] || (rank[s.Verdict] == rank[decider.Verdict] && ratio > worstRatio) {
			decider, worstRatio = cur, ratio
		}
	}
	if decider == nil {
		v.Verdict = Inconclusive
		v.Message = fmt.Sprintf("no verdict for deploy %s: service %s has no SLO", v.Deploy.Version, v.Deploy.Service)
		return
	}
	v.Verdict, v.Before, v.After = decider.Verdict, decider.Before, decider.After
	v.Message = decider.Message
	if v.SupersededBy != nil {
		v.Message += fmt.Sprintf("; watched until deploy %s started", v.SupersededBy.Version)
	}
	if n := len(v.SLOs); n > 1 {
		var others []string
		for _, s := range v.SLOs {
			if s.SLO != decider.SLO {
				others = append(others, s.SLO+": "+s.Verdict)
			}
		}
		v.Message += " (" + strings.Join(others, ", ") + ")"
	}
}

// Watch verifies each deploy of the last watch span every interval until
// the next deploy of its service starts, and tells OnRegression once about
// each deploy whose verdict turns to rollback, so incidents and logs can
// say which deploy raised which SLO's burn rate, from what to what. It
// runs until ctx ends.
func (g *Gate) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 15 * time.Second
	}
	told := map[string]time.Time{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := g.opts.Now()
		// told holds the deploys that need no more verifying: told of, or
		// whose watch ended without a regression.
		for id, at := range told {
			if now.Sub(at) > 2*g.opts.WatchSpan {
				delete(told, id)
			}
		}
		ds, err := g.opts.Store.Deploys(ctx, "", now.Add(-g.opts.WatchSpan), 1000)
		if err != nil {
			g.logger.Warn("post-deploy watch: deploys unknown", "err", err)
			continue
		}
		for _, d := range ds {
			if _, ok := told[d.ID]; ok {
				continue
			}
			v, err := g.Verify(ctx, d)
			if err != nil {
				g.logger.Warn("post-deploy watch: no verdict", "deploy", d.ID, "err", err)
				continue
			}
			if v.Verdict != Rollback {
				if v.SupersededBy != nil || !now.Before(d.StartedAt.Add(g.opts.WatchSpan)) {
					// Its watch is over: the verdict no longer changes.
					told[d.ID] = d.StartedAt
				}
				continue
			}
			told[d.ID] = d.StartedAt
			g.logger.Warn("post-deploy watch: "+v.Message, "deploy", d.ID, "service", d.Service, "version", d.Version)
			if g.opts.OnRegression != nil {
				g.opts.OnRegression(ctx, d, v)
			}
		}
	}
}
