package deploy_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

// history is a service's burn rate as a step function of time: each step
// holds from its instant until the next. A window's burn rate is the
// time-weighted mean of the steps it covers, as rate() over counters
// would give; before the first step there is no data.
type history struct {
	mu    sync.Mutex
	steps []step
}

type step struct {
	at   time.Time
	burn float64
}

func (h *history) set(at time.Time, burn float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.steps = append(h.steps, step{at, burn})
	sort.Slice(h.steps, func(i, j int) bool { return h.steps[i].at.Before(h.steps[j].at) })
}

func (h *history) Burn(_ context.Context, _ string, w time.Duration, at time.Time) ([]deploy.WindowBurn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	from := at.Add(-w)
	var sum, covered float64
	for i, s := range h.steps {
		end := at
		if i+1 < len(h.steps) && h.steps[i+1].at.Before(end) {
			end = h.steps[i+1].at
		}
		start := s.at
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			d := end.Sub(start).Seconds()
			sum += s.burn * d
			covered += d
		}
	}
	if covered == 0 {
		return []deploy.WindowBurn{{SLO: "checkout-availability", NoData: true}}, nil
	}
	return []deploy.WindowBurn{{SLO: "checkout-availability", BurnRate: sum / covered}}, nil
}

func newWatchedGate(t *testing.T, h *history, now *time.Time, told func(deploy.Deploy, deploy.Verdict), policies ...deploy.Policy) *deploy.Gate {
	t.Helper()
	st, err := deploy.OpenStore(context.Background(), filepath.Join(t.TempDir(), "deploy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	src := &source{snaps: map[string]deploy.Snapshot{}}
	src.set("checkout", healthy("checkout-availability"))
	g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(policies...), Source: src, Store: st, History: h,
		Now: func() time.Time { return *now },
		OnRegression: func(_ context.Context, d deploy.Deploy, v deploy.Verdict) {
			if told != nil {
				told(d, v)
			}
		}})
	require.NoError(t, err)
	return g
}

func TestTheWatchJudgesEachDeployByItsOwnBurn(t *testing.T) {
	ctx := context.Background()
	start := t0
	limit := deploy.DefaultPolicy()
	limit.Service = "checkout"
	limit.MaxBurnRate = map[time.Duration]float64{5 * time.Minute: 14.4}
	cases := []struct {
		name string
		// burn is the step function; deploys the (version, start, marked) of each deploy.
		burn    []step
		deploys []struct {
			version       string
			start, marked time.Time
		}
		at time.Time
		// want is each deploy's verdict at at, by version.
		want    map[string]string
		message map[string]string
	}{
		{
			name: "a deploy marked after it ran is judged against the burn before its start",
			burn: []step{{start.Add(-time.Hour), 0.4}, {start, 9}},
			deploys: []struct {
				version       string
				start, marked time.Time
			}{{"v2", start, start.Add(5 * time.Minute)}},
			at:   start.Add(6 * time.Minute),
			want: map[string]string{"v2": deploy.Rollback},
			message: map[string]string{"v2": "deploy v2 raised the burn rate of SLO checkout-availability from 0.4 over the 5m before it " +
				"(11:55:00–12:00:00 UTC) to 9 (12:01:00–12:06:00 UTC)"},
		},
		{
			name: "of two deploys, the one under which the fault began is blamed, not the one before",
			burn: []step{{start.Add(-time.Hour), 0.4}, {start.Add(20 * time.Minute), 9}},
			deploys: []struct {
				version       string
				start, marked time.Time
			}{{"v2", start, start}, {"v3", start.Add(15 * time.Minute), start.Add(15 * time.Minute)}},
			at:   start.Add(30 * time.Minute),
			want: map[string]string{"v2": deploy.Promote, "v3": deploy.Rollback},
			message: map[string]string{"v2": "deploy v2 kept the burn rate of SLO checkout-availability from 0.4 over the 5m before it " +
				"(11:55:00–12:00:00 UTC) to 0.4 (12:10:00–12:15:00 UTC); watched until deploy v3 started"},
		},
		{
			name: "a hotfix that lowers the burn is promoted, even above the policy maximum",
			burn: []step{{start.Add(-time.Hour), 71}, {start, 20}},
			deploys: []struct {
				version       string
				start, marked time.Time
			}{{"v4", start, start}},
			at:   start.Add(5 * time.Minute),
			want: map[string]string{"v4": deploy.Promote},
		},
		{
			name: "a deploy with no data before it has no verdict, never a comparison with 0",
			burn: []step{{start, 3}},
			deploys: []struct {
				version       string
				start, marked time.Time
			}{{"v1", start, start}},
			at:   start.Add(5 * time.Minute),
			want: map[string]string{"v1": deploy.Inconclusive},
			message: map[string]string{"v1": "no verdict for SLO checkout-availability: no baseline, its SLI has no data over the 5m before the deploy " +
				"(11:55:00–12:00:00 UTC); burn rate after is 3"},
		},
		{
			name: "the first verdict comes one minute after the start",
			burn: []step{{start.Add(-time.Hour), 0.4}, {start, 9}},
			deploys: []struct {
				version       string
				start, marked time.Time
			}{{"v2", start, start}},
			at:   start.Add(time.Minute),
			want: map[string]string{"v2": deploy.Rollback},
		},
		{
			name: "before a minute has passed the watch waits",
			burn: []step{{start.Add(-time.Hour), 0.4}, {start, 9}},
			deploys: []struct {
				version       string
				start, marked time.Time
			}{{"v2", start, start}},
			at:   start.Add(59 * time.Second),
			want: map[string]string{"v2": deploy.Wait},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &history{}
			for _, s := range tc.burn {
				h.set(s.at, s.burn)
			}
			var now time.Time
			g := newWatchedGate(t, h, &now, nil, limit)
			ids := map[string]string{}
			for _, d := range tc.deploys {
				now = d.marked
				rec, err := g.RecordDeploy(ctx, deploy.DeployRequest{Service: "checkout", Version: d.version, StartedAt: d.start})
				require.NoError(t, err)
				ids[d.version] = rec.ID
			}
			now = tc.at
			for version, want := range tc.want {
				d := deploy.Deploy{ID: ids[version], Service: "checkout", Version: version}
				for _, x := range tc.deploys {
					if x.version == version {
						d.StartedAt = x.start
					}
				}
				v, err := g.Verify(ctx, d)
				require.NoError(t, err)
				require.Equal(t, want, v.Verdict, "%s: %s", version, v.Message)
				if m, ok := tc.message[version]; ok {
					require.Equal(t, m, v.Message)
				}
			}
		})
	}
}

func TestTheWatchTellsOnceOfADeployThatRaisedTheBurnRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := &history{}
		start := time.Now()
		h.set(start.Add(-time.Hour), 0.5)
		h.set(start, 9.1)
		var mu sync.Mutex
		var told []string
		st, err := deploy.OpenStore(ctx, filepath.Join(t.TempDir(), "deploy.db"))
		require.NoError(t, err)
		defer st.Close()
		src := &source{snaps: map[string]deploy.Snapshot{}}
		src.set("checkout", healthy("checkout-availability"))
		g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(), Source: src, Store: st, History: h,
			OnRegression: func(_ context.Context, d deploy.Deploy, v deploy.Verdict) {
				mu.Lock()
				defer mu.Unlock()
				told = append(told, d.Version+": "+v.Verdict)
			}})
		require.NoError(t, err)
		_, err = g.RecordDeploy(ctx, deploy.DeployRequest{Service: "checkout", Version: "v2"})
		require.NoError(t, err)
		go func() { _ = g.Watch(ctx, 15*time.Second) }()

		time.Sleep(50 * time.Second)
		synctest.Wait()
		mu.Lock()
		require.Empty(t, told, "no verdict before a minute lies after the deploy")
		mu.Unlock()

		time.Sleep(10 * time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, []string{"v2: rollback"}, told, "told once, at the first tick a minute lies after the deploy")
	})
}

func TestAMarkForAnUnknownServiceIs404(t *testing.T) {
	f := newGate(t, "")
	code, body := f.do(t, "POST", "/api/v1/deploys", `{"service":"nope","version":"v1"}`)
	require.Equal(t, http.StatusNotFound, code, body)
	require.Contains(t, body, `unknown service \"nope\"`)
}
