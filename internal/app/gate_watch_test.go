package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

// TestTheWatchReadsBaselinesFromTheTSDB writes checkout's counters into a
// real TSDB with the error ratio changing at set instants, marks deploys
// through the API with the clock pinned, and asks for each deploy's
// verdict: the baseline is the 5 minutes before the deploy's start, read
// from the TSDB whenever the mark arrives; a deploy's watch ends when the
// next one starts.
func TestTheWatchReadsBaselinesFromTheTSDB(t *testing.T) {
	t1 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	// errFrac is the error ratio over time (the SLO's budget is 0.1%, so
	// 0.0004 burns at 0.4 and 0.009 at 9); from is when traffic starts.
	type phase struct {
		after   time.Time // the ratio holds for samples after this instant
		errFrac float64
	}
	type mark struct {
		version       string
		start, marked time.Time
	}
	cases := []struct {
		name   string
		from   time.Time
		phases []phase
		marks  []mark
		at     time.Time
		want   map[string]string
		says   map[string]string
	}{
		{
			name:   "a deploy marked after it ran, with --started-at before, is caught raising the burn",
			from:   t1.Add(-time.Hour),
			phases: []phase{{t1.Add(-time.Hour), 0.0004}, {t1, 0.009}},
			marks:  []mark{{"v2", t1, t1.Add(5 * time.Minute)}},
			at:     t1.Add(6 * time.Minute),
			want:   map[string]string{"v2": deploy.Rollback},
			says: map[string]string{"v2": "deploy v2 raised the burn rate of SLO checkout-requests-availability from 0.4 over the 5m before it " +
				"(13:55:00–14:00:00 UTC) to 9 (14:01:00–14:06:00 UTC)"},
		},
		{
			name:   "of two deploys the fault after the second blames the second only",
			from:   t1.Add(-time.Hour),
			phases: []phase{{t1.Add(-time.Hour), 0.0004}, {t1.Add(20 * time.Minute), 0.009}},
			marks:  []mark{{"v2", t1, t1}, {"v3", t1.Add(15 * time.Minute), t1.Add(15 * time.Minute)}},
			at:     t1.Add(30 * time.Minute),
			want:   map[string]string{"v2": deploy.Promote, "v3": deploy.Rollback},
			says: map[string]string{"v2": "deploy v2 kept the burn rate of SLO checkout-requests-availability from 0.4 over the 5m before it " +
				"(13:55:00–14:00:00 UTC) to 0.4 (14:10:00–14:15:00 UTC); watched until deploy v3 started"},
		},
		{
			name:   "a hotfix that lowers the burn from 71 to 20 is promoted",
			from:   t1.Add(-time.Hour),
			phases: []phase{{t1.Add(-time.Hour), 0.071}, {t1, 0.02}},
			marks:  []mark{{"v4", t1, t1}},
			at:     t1.Add(5 * time.Minute),
			want:   map[string]string{"v4": deploy.Promote},
		},
		{
			name:   "a deploy with no data in the window before it has no verdict",
			from:   t1,
			phases: []phase{{t1, 0.003}},
			marks:  []mark{{"v1", t1, t1}},
			at:     t1.Add(5 * time.Minute),
			want:   map[string]string{"v1": deploy.Inconclusive},
			says: map[string]string{"v1": "no verdict for SLO checkout-requests-availability: no baseline, its SLI has no data over the 5m before the deploy " +
				"(13:55:00–14:00:00 UTC); burn rate after is 3"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			limit := deploy.DefaultPolicy()
			limit.Service = "checkout"
			limit.MaxBurnRate = map[time.Duration]float64{5 * time.Minute: 14.4}
			g := newGateOnTSDB(t, eventsSpec, limit)
			writeCounters(t, g.db, tc.from, tc.at, func(at time.Time) (float64, float64, bool) {
				frac := 0.0
				for _, p := range tc.phases {
					if at.After(p.after) {
						frac = p.errFrac
					}
				}
				return 10, 10 * frac, true
			})
			g.evaluate(t, tc.at)
			ids := map[string]string{}
			for _, m := range tc.marks {
				g.clk.set(m.marked)
				body, _ := json.Marshal(map[string]any{"service": "checkout", "version": m.version, "started_at": m.start})
				resp, err := http.Post(g.srv.URL+"/api/v1/deploys", "application/json", bytes.NewReader(body))
				require.NoError(t, err)
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusCreated, resp.StatusCode, string(raw))
				var d deploy.Deploy
				require.NoError(t, json.Unmarshal(raw, &d))
				ids[m.version] = d.ID
			}
			g.clk.set(tc.at)
			for version, want := range tc.want {
				resp, err := http.Get(g.srv.URL + "/api/v1/deploys/" + ids[version] + "/verify")
				require.NoError(t, err)
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
				var v deploy.Verdict
				require.NoError(t, json.Unmarshal(raw, &v))
				require.Equal(t, want, v.Verdict, "%s: %s", version, v.Message)
				if says, ok := tc.says[version]; ok {
					require.Equal(t, says, v.Message)
				}
			}
		})
	}
}
