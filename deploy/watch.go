package deploy

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
)

// Verdicts of the post-deploy watch.
const (
	Promote  = "promote"
	Rollback = "rollback"
	Wait     = "wait"
)

// Watch thresholds: a deploy is rolled back when the burn rate after it is
// above 1 (spending faster than the period allows) and more than twice
// what it was before, or above the policy's maximum for that window.
const (
	watchMinBurn = 1.0
	watchRatio   = 2.0
)

// Verdict compares the burn rate after a deploy with the burn rate before.
type Verdict struct {
	Verdict string `json:"verdict"`
	Deploy  Deploy `json:"deploy"`
	// Window is the longest burn-rate window that lies wholly after the
	// deploy started, so it measures the new version only.
	Window  string    `json:"window,omitempty"`
	Before  jsonFloat `json:"before_burn_rate"`
	After   jsonFloat `json:"after_burn_rate"`
	Message string    `json:"message"`
	// Gate is the gate's decision now, for the record.
	Gate Decision `json:"gate"`
}

// Verify decides whether deploy d should be promoted or rolled back.
func (g *Gate) Verify(d Deploy) (Verdict, error) {
	snap, ok := g.opts.Source.Snapshot(d.Service)
	if !ok {
		return Verdict{}, fmt.Errorf("%w %q", ErrUnknownService, d.Service)
	}
	now := g.opts.Now()
	p := g.opts.Policies.For(d.Service)
	dec := Decide(p, snap, now)
	return verify(p, d, dec, now), nil
}

func verify(p Policy, d Deploy, gate Decision, now time.Time) Verdict {
	v := Verdict{Deploy: d, Gate: gate, Before: jsonFloat(math.NaN()), After: jsonFloat(math.NaN())}
	elapsed := now.Sub(d.StartedAt)
	var w time.Duration
	for _, cand := range sortedWindows(gate.BurnRates) {
		if cand <= elapsed {
			w = cand
		}
	}
	if w == 0 {
		v.Verdict = Wait
		v.Message = fmt.Sprintf("deploy %s started %s ago; no burn-rate window lies wholly after it yet", d.Version, roundDur(elapsed))
		return v
	}
	k := model.Duration(w).String()
	after := gate.BurnRates[k]
	before, hadBefore := d.BeforeBurn[k]
	v.Window, v.After = k, jsonFloat(after)
	if hadBefore {
		v.Before = jsonFloat(before)
	}
	verb := "kept"
	switch {
	case after > before*1.05:
		verb = "raised"
	case after < before*0.95:
		verb = "lowered"
	}
	v.Message = fmt.Sprintf("deploy %s %s the %s burn rate from %s to %s", d.Version, verb, k, fmtBurn(before), fmtBurn(after))
	limit, hasLimit := p.MaxBurnRate[w]
	switch {
	case hasLimit && after > limit:
		v.Verdict = Rollback
		v.Message += fmt.Sprintf(", above the policy maximum of %s", fmtBurn(limit))
	case after > watchMinBurn && after > watchRatio*before:
		v.Verdict = Rollback
	default:
		v.Verdict = Promote
	}
	return v
}

// Watch verifies every deploy of the last hour each interval, and tells
// OnRegression once about each deploy whose verdict turns to rollback, so
// incidents and logs can say "deploy v2 raised the 1h burn rate from 0.4 to
// 9.1". It runs until ctx ends.
func (g *Gate) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	told := map[string]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := g.opts.Now()
		ds, err := g.opts.Store.Deploys(ctx, "", now.Add(-watchSpan), 1000)
		if err != nil {
			g.logger.Warn("post-deploy watch: deploys unknown", "err", err)
			continue
		}
		for _, d := range ds {
			if told[d.ID] {
				continue
			}
			v, err := g.Verify(d)
			if err != nil || v.Verdict != Rollback {
				continue
			}
			told[d.ID] = true
			g.logger.Warn("post-deploy watch: "+v.Message, "deploy", d.ID, "service", d.Service, "version", d.Version)
			if g.opts.OnRegression != nil {
				g.opts.OnRegression(ctx, d, v)
			}
		}
	}
}

// watchSpan is how long after a deploy the watch keeps comparing.
const watchSpan = time.Hour
