package load

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/edge"
	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/telemetry"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestShapesScheduleTheArrivalsTheirRateIntegratesTo(t *testing.T) {
	cases := []struct {
		name     string
		o        Options
		at       time.Duration
		wantRate float64
		wantHits float64
	}{
		{"constant holds its rate", Options{Shape: "constant", Rate: 100, Duration: time.Minute}, 30 * time.Second, 100, 3000},
		{"ramp is halfway up at half time", Options{Shape: "ramp", Rate: 101, Duration: 100 * time.Second}, 50 * time.Second, 51, 50*1 + 50*50*100.0/(2*100)},
		{"step climbs in equal steps", Options{Shape: "step", Rate: 100, Steps: 4, Duration: 40 * time.Second}, 25 * time.Second, 75, 25*10 + 50*10 + 75*5},
		{"sine peaks at a quarter period", Options{Shape: "sine", Rate: 100, Period: 40 * time.Second, Duration: time.Minute}, 10 * time.Second, 150, 1000 + 50*40/(2*3.141592653589793)},
		{"spike multiplies the base rate while it lasts", Options{Shape: "spike", Rate: 10, SpikeFactor: 5, SpikeAt: 10 * time.Second, SpikeLength: 10 * time.Second, Duration: time.Minute}, 15 * time.Second, 50, 150 + 40*5},
		{"spike returns to the base rate", Options{Shape: "spike", Rate: 10, SpikeFactor: 5, SpikeAt: 10 * time.Second, SpikeLength: 10 * time.Second, Duration: time.Minute}, 30 * time.Second, 10, 300 + 40*10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.o.withDefaults().curve()
			require.InDelta(t, tc.wantRate, c.rate(tc.at.Seconds()), 1e-9)
			require.InDelta(t, tc.wantHits, c.hits(tc.at.Seconds()), 1e-6)
		})
	}
}

func TestThePacerWaitsUntilTheNextArrivalIsDueAndNeverForTheTarget(t *testing.T) {
	p := pacer{c: constant{r: 10}, max: 100}
	wait, stop := p.Pace(0, 0)
	require.False(t, stop)
	require.InDelta(t, 100*time.Millisecond, wait, float64(time.Microsecond), "the first of 10/s is due at 100ms")
	wait, _ = p.Pace(time.Second, 3)
	require.Zero(t, wait, "behind schedule (3 sent, 10 due): send at once, whatever the responses did")
	_, stop = p.Pace(time.Hour, 100)
	require.True(t, stop, "the count bound stops the run")

	sp := pacer{c: spike{r: 1, factor: 100, at: 10, length: 1}}
	wait, _ = sp.Pace(5*time.Second, 5)
	require.InDelta(t, float64(time.Second), float64(wait), float64(time.Millisecond), "before the spike, 1/s")
	wait, _ = sp.Pace(10*time.Second, 10)
	require.InDelta(t, float64(10*time.Millisecond), float64(wait), float64(100*time.Microsecond), "in the spike, 100/s")
}

func TestOptionsAreValidated(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"a zero rate is refused", Options{Duration: time.Second}, "rate:"},
		{"an unbounded run is refused", Options{Rate: 1}, "duration:"},
		{"a run longer than a day is refused", Options{Rate: 1, Duration: 25 * time.Hour}, "duration:"},
		{"an unknown shape is refused", Options{Rate: 1, Duration: time.Second, Shape: "square"}, "shape:"},
		{"an unknown endpoint in the mix is refused", Options{Rate: 1, Duration: time.Second, Mix: "checkout:1"}, "mix:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, tc.o.Validate(), tc.want)
		})
	}
}

func TestARunIsBoundedInCountAndReportsStatusAndLatency(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Options{Target: srv.URL, Rate: 200, Duration: 10 * time.Second, MaxRequests: 40, Seed: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(40), rep.Requests)
	require.Equal(t, 30, rep.Status["200"])
	require.Equal(t, 10, rep.Status["503"])
	require.Positive(t, rep.Latency.P50)
	require.GreaterOrEqual(t, rep.Latency.Max, rep.Latency.P99)
	b, err := rep.JSON()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.ElementsMatch(t, []string{"requests", "achieved_rps", "latency_ms", "status", "latency_ms_by_class",
		"late_arrivals", "max_late_ms", "rate_limited", "warnings"}, keys(m))
	require.ElementsMatch(t, []string{"p50", "p90", "p99", "max"}, keys(m["latency_ms"].(map[string]any)))
	require.Contains(t, rep.Text(), "503: 10")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTheTargeterFollowsTheMixAndZipfPopularity(t *testing.T) {
	tr, err := newTargeter(Options{Target: "http://edge", Keys: 1000, ZipfS: 1.2, Mix: "product:90,add:10", Clients: 3, Seed: 7}.withDefaults())
	require.NoError(t, err)
	counts := map[string]int{}
	products := map[string]int{}
	clients := map[string]bool{}
	var mu sync.Mutex
	for range 5000 {
		var tg vegeta.Target
		require.NoError(t, tr(&tg))
		mu.Lock()
		clients[tg.Header.Get("X-Client-ID")] = true
		switch {
		case tg.Method == http.MethodGet && strings.HasPrefix(tg.URL, "http://edge/api/products/"):
			counts["product"]++
			products[strings.TrimPrefix(tg.URL, "http://edge/api/products/")]++
		case tg.Method == http.MethodPut:
			counts["add"]++
			require.JSONEq(t, `{"qty":`+string(tg.Body[7])+`}`, string(tg.Body))
		default:
			t.Fatalf("unexpected target %s %s", tg.Method, tg.URL)
		}
		mu.Unlock()
	}
	require.InDelta(t, 4500, counts["product"], 150)
	require.Len(t, clients, 3)
	require.Greater(t, products["0"], products["10"], "lower keys are more popular")
	require.Greater(t, products["0"], 5000*9/10/20, "the most popular key gets a large share")
}

func TestLatencyIsReportedPerStatusClass(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable) // fast failures
			return
		}
		time.Sleep(30 * time.Millisecond)
	}))
	defer srv.Close()
	rep, err := Run(context.Background(), Options{Target: srv.URL, Rate: 200, Duration: 10 * time.Second, MaxRequests: 20, Seed: 1}, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"2xx", "5xx"}, keys(toAny(rep.LatencyByClass)))
	require.GreaterOrEqual(t, rep.LatencyByClass["2xx"].P50, 30.0, "the successes' own percentiles, not diluted by fast 503s")
	require.Contains(t, rep.Text(), "5xx")
}

func toAny[V any](m map[string]V) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestArrivalsSentLateBySaturationAreCountedAndWarnedAbout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(50 * time.Millisecond)
	}))
	defer srv.Close()
	// 100/s into one worker that needs 50ms a request: arrival n is due at
	// n×10ms but can only leave at n×50ms.
	rep, err := Run(context.Background(), Options{Target: srv.URL, Rate: 100, Duration: 10 * time.Second, MaxRequests: 10, MaxWorkers: 1, Seed: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(10), rep.Requests)
	require.GreaterOrEqual(t, rep.Late, uint64(7))
	require.GreaterOrEqual(t, rep.MaxLateMS, 200.0)
	require.Len(t, rep.Warnings, 1)
	require.Contains(t, rep.Warnings[0], "coordinated omission")
}

func TestAWarningSaysWhenTheEdgesRateLimitCapsTheLoad(t *testing.T) {
	srv := newEdge(t, edge.Config{RateLimit: 10, Burst: 5, ClientIDSecret: "s"})

	rep, err := Run(context.Background(), Options{Target: srv.URL, Rate: 200, Duration: 10 * time.Second, MaxRequests: 40, Seed: 1, Mix: "product:1"}, nil)
	require.NoError(t, err)
	require.Greater(t, rep.RateLimited, 20, "one address, a burst of 5 at 10/s")
	// The rate-limit warning; on a busy machine a late-arrivals warning
	// may come with it.
	require.NotEmpty(t, rep.Warnings)
	require.Contains(t, rep.Warnings[0], "rate limit capped the load")
	require.Contains(t, rep.Warnings[0], "--client-secret")

	// Signed, ten clients each get their own bucket of 5: the 40 fit.
	rep, err = Run(context.Background(), Options{Target: srv.URL, Rate: 200, Duration: 10 * time.Second, MaxRequests: 40, Seed: 1, Mix: "product:1", Clients: 10, ClientSecret: "s"}, nil)
	require.NoError(t, err)
	require.Less(t, rep.RateLimited, 10)
}

func TestTheNumberOfClientsFollowsTheRateSoNoneGoesPastTheDefaultLimit(t *testing.T) {
	cases := []struct {
		name  string
		shape string
		rate  float64
		want  int
	}{
		{"a low rate keeps ten clients", "constant", 20, 10},
		{"3000/s gets one client per 25/s", "constant", 3000, 120},
		{"a sine is sized for its peak", "sine", 1000, 60},
		{"a spike is sized for its base: its burst is meant to hit the limit", "spike", 1000, 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Options{Shape: tc.shape, Rate: tc.rate, Duration: time.Second}.withDefaults().Clients)
		})
	}
}

func TestAPlainSignedRunAtAHighRateIsNotThrottledByTheEdgesDefaultLimit(t *testing.T) {
	// The edge's defaults (demo.rate_limit and demo.rate_burst).
	srv := newEdge(t, edge.Config{RateLimit: 50, Burst: 50, ClientIDSecret: "s"})

	// 1,500 arrivals at 1,000/s: ten clients would each send 100/s into a
	// bucket of 50 and get about a third of their requests answered 429.
	rep, err := Run(context.Background(), Options{Target: srv.URL, Rate: 1000, Duration: 1500 * time.Millisecond, Seed: 1, Mix: "product:1", ClientSecret: "s"}, nil)
	require.NoError(t, err)
	require.Greater(t, rep.Requests, uint64(1000))
	require.Zero(t, rep.RateLimited, "status %v", rep.Status)
}

// newEdge is an uninstrumented edge in front of an API that answers 200.
func newEdge(t *testing.T, cfg edge.Config) *httptest.Server {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(api.Close)
	tel, err := telemetry.New(context.Background(), "demo-edge", "t", telemetry.Options{})
	require.NoError(t, err)
	e, err := edge.New(cfg, []string{api.URL}, faults.New(), tel)
	require.NoError(t, err)
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	return srv
}
