package gameday

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/burnrate/burnrate/demoapp/load"
)

// Workbook says which SLO alert condition an expectation stands for, so
// that its expected time is computed (the SRE workbook's detection time)
// instead of set by hand:
//
//	within = factor × error budget / error ratio × window
//
// with the error ratio measured during the fault. Tier takes factor and
// window from the SLO's alert tier of that severity that fires first;
// Factor and Window name them directly (a burn-rate query such as
// slo:current_burn_rate:ratio > 2 on the 5m window is factor 2, window 5m).
type Workbook struct {
	// SLO is the SLO's id (sloth_id), read from GET /api/v1/slos/{id}.
	SLO string `yaml:"slo"`
	// Tier is a severity (page, ticket).
	Tier   string        `yaml:"tier"`
	Factor float64       `yaml:"factor"`
	Window time.Duration `yaml:"window"`
	// SlowerThan makes a bad event an answer slower than this (a latency
	// SLO); otherwise a bad event is a 5xx.
	SlowerThan time.Duration `yaml:"slower_than"`
}

func (w *Workbook) validate() error {
	switch {
	case w.SLO == "":
		return errors.New("slo: must not be empty")
	case (w.Tier == "") == (w.Factor == 0):
		return errors.New("give exactly one of tier or factor (with window)")
	case w.Factor < 0 || (w.Factor > 0 && w.Window <= 0):
		return errors.New("factor and window: must be above 0")
	}
	return nil
}

// TooEarlyFraction: a detection sooner than this fraction of the workbook
// time is flagged, not scored: the windows were not full (no steady-state
// history) or the signal was there before the fault.
const TooEarlyFraction = 0.5

// sloStatus is the part of GET /api/v1/slos/{id} a drill reads.
type sloStatus struct {
	ErrorBudget    float64  `json:"error_budget"`
	BudgetConsumed *float64 `json:"budget_consumed"`
	Windows        []struct {
		Window   string   `json:"window"`
		BurnRate *float64 `json:"burn_rate"`
	} `json:"windows"`
	Tiers []struct {
		Severity   string  `json:"severity"`
		LongWindow string  `json:"long_window"`
		Factor     float64 `json:"factor"`
	} `json:"tiers"`
}

// condition is the factor and window of w on the SLO st.
func (w *Workbook) condition(st sloStatus) (factor float64, window time.Duration, err error) {
	if w.Factor > 0 {
		return w.Factor, w.Window, nil
	}
	best := math.Inf(1)
	for _, t := range st.Tiers {
		if t.Severity != w.Tier {
			continue
		}
		d, perr := model.ParseDuration(t.LongWindow)
		if perr != nil {
			return 0, 0, fmt.Errorf("SLO %s: tier window %q: %w", w.SLO, t.LongWindow, perr)
		}
		// The tier that fires first is the one with the least factor ×
		// window for any error ratio.
		if v := t.Factor * time.Duration(d).Seconds(); v < best {
			best, factor, window = v, t.Factor, time.Duration(d)
		}
	}
	if factor == 0 {
		return 0, 0, fmt.Errorf("SLO %s has no %s tier", w.SLO, w.Tier)
	}
	return factor, window, nil
}

// burnRate is the SLO's burn rate over window, NaN when unknown.
func (st sloStatus) burnRate(window time.Duration) float64 {
	for _, w := range st.Windows {
		if d, err := model.ParseDuration(w.Window); err == nil && time.Duration(d) == window && w.BurnRate != nil {
			return *w.BurnRate
		}
	}
	return math.NaN()
}

// detectionTime is the workbook's time to detect an error ratio e.
func detectionTime(factor, budget, e float64, window time.Duration) time.Duration {
	if e <= 0 {
		return time.Duration(math.MaxInt64)
	}
	d := factor * budget / e * float64(window)
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// api reads Burnrate's JSON APIs ({"status", "data"} envelopes).
type api struct {
	base string
	http *http.Client
}

func (a *api) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&env); err != nil {
		return fmt.Errorf("GET %s: %s: %w", path, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || env.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

func (a *api) slo(ctx context.Context, id string) (sloStatus, error) {
	var out struct {
		SLO sloStatus `json:"slo"`
	}
	err := a.get(ctx, "/api/v1/slos/"+url.PathEscape(id), &out)
	return out.SLO, err
}

// failingTraces lists up to limit failed traces through the edge between
// start and end.
func (a *api) failingTraces(ctx context.Context, start, end time.Time, limit int) ([]string, error) {
	var out []struct {
		TraceID string `json:"traceID"`
	}
	q := url.Values{"service": {"demo-edge"}, "status": {"error"}, "limit": {strconv.Itoa(limit)},
		"start": {start.UTC().Format(time.RFC3339)}, "end": {end.UTC().Format(time.RFC3339)}}
	if err := a.get(ctx, "/api/v1/traces?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, t := range out {
		ids = append(ids, t.TraceID)
	}
	return ids, nil
}

// FaultEvent is a fault change from Burnrate's event store.
type FaultEvent struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Flag   string    `json:"flag"`
	Value  string    `json:"value"`
	Source string    `json:"source"`
}

func (a *api) events(ctx context.Context, since time.Time) ([]FaultEvent, error) {
	var out []FaultEvent
	err := a.get(ctx, "/api/v1/demo/events?since="+url.QueryEscape(since.UTC().Format(time.RFC3339Nano)), &out)
	return out, err
}

// answers keeps the load's answers by time, to measure the error ratio of
// any stretch of the drill.
type answers struct {
	mu  sync.Mutex
	all []load.Result
}

func (a *answers) add(r load.Result) {
	a.mu.Lock()
	a.all = append(a.all, r)
	a.mu.Unlock()
}

// ratio is the fraction of answers sent in [from, to) that were bad: 5xx
// or no answer, or, with slowerThan, slower than it. n is how many there
// were.
func (a *answers) ratio(from, to time.Time, slowerThan time.Duration) (ratio float64, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	bad := 0
	for _, r := range a.all {
		if r.At.Before(from) || !r.At.Before(to) {
			continue
		}
		n++
		switch {
		case slowerThan > 0 && r.Latency > slowerThan:
			bad++
		case slowerThan == 0 && (r.Code == 0 || r.Code >= 500):
			bad++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(bad) / float64(n), n
}
