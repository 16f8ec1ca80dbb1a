package gameday_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/faults"
	"github.com/burnrate/burnrate/demoapp/gameday"
	"github.com/burnrate/burnrate/incidents"
)

const respondedDrill = `
name: responded-outage
title: Responded outage
duration: 1500ms
load: {shape: constant, rate: 20}
timeline:
  - at: 200ms
    set: {store.shard_down: "1"}
    expect:
      - name: page arrives
        page: demo-edge-availability
        within: 1s
        acknowledge_within: 5m
        resolve_within: 3m
`

func TestADrillReportsTheTimesToAcknowledgeAndResolveOfItsIncident(t *testing.T) {
	fake, set := fakeBurnrate(t, 100*time.Millisecond)
	// The incident tracker's clock runs with the wall clock plus a shift the
	// responders below move, so that their minutes pass in milliseconds.
	var shift atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	svc, err := incidents.Open(context.Background(), incidents.Options{Path: filepath.Join(t.TempDir(), "incidents.db"), Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Close()) })
	// An incident of another SLO, and one of this SLO from before the drill,
	// are not the drill's.
	_, err = svc.Declare(context.Background(), incidents.NewIncident{Title: "old", Severity: "SEV2", SLO: "demo-edge-availability"})
	require.NoError(t, err)
	_, err = svc.Declare(context.Background(), incidents.NewIncident{Title: "other", Severity: "SEV2", SLO: "demo-edge-latency"})
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond) // the old incident is more than the allowed skew before the drill

	var respond sync.Once
	var responded sync.WaitGroup
	set.Subscribe(func(st *faults.State) {
		if len(st.ShardDown) == 0 {
			return
		}
		respond.Do(func() {
			responded.Go(func() {
				// The page opens the incident; someone acknowledges it 90 s
				// later and resolves it 4 minutes after the trigger.
				ctx := context.Background()
				inc, err := svc.Declare(ctx, incidents.NewIncident{Title: "Edge availability burning", Severity: "SEV2",
					Service: "demo-edge", SLO: "demo-edge-availability"})
				if err != nil {
					t.Error(err)
					return
				}
				shift.Add(int64(90 * time.Second))
				if _, err := svc.Acknowledge(ctx, inc.ID, incidents.Actor{By: "ana", Source: "api"}); err != nil {
					t.Error(err)
				}
				shift.Add(int64(150 * time.Second))
				if _, err := svc.Resolve(ctx, inc.ID, incidents.Actor{By: "ana", Source: "api"}, "shard back"); err != nil {
					t.Error(err)
				}
			})
		})
	})

	mux := http.NewServeMux()
	for _, p := range incidents.Prefixes {
		mux.Handle(p, svc.Handler())
	}
	target, err := url.Parse(fake.URL)
	require.NoError(t, err)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	burnrate := httptest.NewServer(mux)
	defer burnrate.Close()
	edge := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer edge.Close()

	s, err := gameday.Parse([]byte(respondedDrill))
	require.NoError(t, err)
	rep, err := gameday.Run(context.Background(), s, gameday.Options{URL: burnrate.URL, EdgeURL: edge.URL, Poll: 20 * time.Millisecond})
	require.NoError(t, err)
	responded.Wait()

	require.Len(t, rep.Results, 1)
	got := rep.Results[0]
	require.Empty(t, got.IncidentWhy)
	require.NotNil(t, got.Incident)
	require.Equal(t, "Edge availability burning", got.Incident.Title)
	md := rep.Markdown()
	require.Contains(t, md, "| #3 1m30s (expected 5m0s) | #3 4m0s (expected 3m0s) **late** |")
}
