package sloengine

import (
	"context"
	"fmt"
	"math"
	"time"
)

// WindowAt evaluates SLO id's SLI over the window of length w ending at
// at, with PromQL against the engine's querier, never its in-memory
// buffers (which hold only the recent past). The deploy watch reads it to
// compare the window before a deploy with the window after, at any length
// and any past instant the storage still holds.
func (e *Engine) WindowAt(ctx context.Context, id string, w time.Duration, at time.Time) (WindowStatus, error) {
	st, ok := e.byID[id]
	if !ok {
		return WindowStatus{}, fmt.Errorf("sloengine: unknown SLO %q", id)
	}
	s := st.slo
	eb := s.ErrorBudget()
	q := e.opts.Querier
	ws := WindowStatus{Window: FormatWindow(w), Seconds: w.Seconds(), Length: w}
	nan := Value(math.NaN())
	if s.SLI.Kind == KindRaw {
		r, ok, err := scalar(ctx, q, s.SLI.ratioExpr(w), at)
		if err != nil {
			return ws, err
		}
		ws.ErrorRatio, ws.SLI, ws.BurnRate = Value(r), Value(1-r), Value(r/eb)
		ws.BadEvents, ws.GoodEvents, ws.TotalEvents = nan, nan, nan
		ws.NoData = !ok
		ws.LowTraffic = math.IsNaN(r)
		return ws, nil
	}
	bad, _, err := scalar(ctx, q, s.SLI.badExpr(w), at)
	if err != nil {
		return ws, err
	}
	all, _, err := scalar(ctx, q, s.SLI.totalExpr(w), at)
	if err != nil {
		return ws, err
	}
	return withEvents(ws, s, bad, all), nil
}
