package faults_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/faults"
)

func TestValuesParseOrAreRefusedWithTheReason(t *testing.T) {
	cases := []struct {
		name, flag, value, want, err string
	}{
		{"a fraction is kept as written", "api.error_fraction", "0.25", "0.25", ""},
		{"a fraction above 1 is refused", "api.error_fraction", "1.5", "", "between 0 and 1"},
		{"a latency is normalised", "store.latency", "1500ms", "1.5s", ""},
		{"a latency of hours is refused", "edge.latency", "10h", "", "between 0s and 1m0s"},
		{"shards are sorted and deduplicated", "store.shard_down", "3, 1,3", "1,3", ""},
		{"a slow shard keeps its own latency", "store.shard_slow", "2@1s,0", "0,2@1s", ""},
		{"a shard that is not a number is refused", "store.shard_down", "one", "", "shard numbers"},
		{"a cache mode must be known", "cache.mode", "sometimes", "", "on, off, leaky"},
		{"a zero rate limit is refused", "edge.rate_limit", "0", "", "above 0"},
		{"a leak above the bound is refused", "memory.leak", "4096", "", "between 0 and 1024"},
		{"unreachable tiers are listed", "dependency.unreachable", "store,cache", "cache,store", ""},
		{"the edge cannot be unreachable from itself", "dependency.unreachable", "edge", "", "api, cache, store"},
		{"an unknown flag is refused", "payment.failure", "1", "", "unknown fault flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := faults.New()
			v, err := set.Set(context.Background(), tc.flag, tc.value, "test")
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Empty(t, set.Values(), "a refused value changes nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v.Value)
		})
	}
}

func TestStateFollowsSetAndClear(t *testing.T) {
	set := faults.New()
	ctx := context.Background()
	var seen []*faults.State
	set.Subscribe(func(s *faults.State) { seen = append(seen, s) })
	_, err := set.Set(ctx, "store.shard_down", "2", "test")
	require.NoError(t, err)
	_, err = set.Set(ctx, "cache.mode", "off", "test")
	require.NoError(t, err)
	st := set.State()
	require.True(t, st.ShardDown[2])
	require.Equal(t, faults.CacheOff, st.CacheMode)
	cleared, err := set.Clear(ctx, "", "test")
	require.NoError(t, err)
	require.Equal(t, []string{"cache.mode", "store.shard_down"}, cleared)
	require.Equal(t, faults.CacheOn, set.State().CacheMode)
	require.Empty(t, set.State().ShardDown)
	require.Len(t, seen, 4, "subscribers see the initial state and every change")
}

func TestTheAPIRecordsEveryChangeAsAnEvent(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	file := filepath.Join(t.TempDir(), "demo.db")
	set, err := faults.Open(context.Background(), file, nil, func() time.Time { return now })
	require.NoError(t, err)
	srv := httptest.NewServer(set.Handler())
	defer srv.Close()

	call := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	code, _ := call(http.MethodPut, "/api/v1/demo/faults/store.shard_down", `{"value":"1","source":"cli"}`)
	require.Equal(t, http.StatusOK, code)
	now = now.Add(time.Minute)
	code, _ = call(http.MethodPost, "/api/v1/demo/faults/api.error_fraction", `{"value":0.5}`)
	require.Equal(t, http.StatusOK, code, "a JSON number is accepted")
	code, out := call(http.MethodPut, "/api/v1/demo/faults/api.error_fraction", `{"value":"lots"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "bad_data", out["errorType"])
	code, _ = call(http.MethodPut, "/api/v1/demo/faults/nope", `{"value":"1"}`)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = call(http.MethodPut, "/api/v1/demo/faults/api.latency", `not json`)
	require.Equal(t, http.StatusBadRequest, code)
	now = now.Add(time.Minute)
	code, out = call(http.MethodDelete, "/api/v1/demo/faults/store.shard_down", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"cleared": []any{"store.shard_down"}}, out["data"])

	code, out = call(http.MethodGet, "/api/v1/demo/faults", "")
	require.Equal(t, http.StatusOK, code)
	active := out["data"].(map[string]any)["active"].([]any)
	require.Len(t, active, 1)
	require.Equal(t, "api.error_fraction", active[0].(map[string]any)["name"])

	require.NoError(t, set.Close())
	// Events survive a restart of the process.
	set, err = faults.Open(context.Background(), file, nil, nil)
	require.NoError(t, err)
	defer set.Close()
	events, err := set.Events(context.Background(), time.Time{}, 100)
	require.NoError(t, err)
	require.Len(t, events, 3)
	require.Equal(t, faults.EventSet, events[0].Kind)
	require.Equal(t, "cli", events[0].Source)
	require.Equal(t, "api", events[1].Source)
	require.Equal(t, "0.5", events[1].Value)
	require.Equal(t, faults.EventCleared, events[2].Kind)
	require.Equal(t, time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC), events[2].At)

	srv2 := httptest.NewServer(set.Handler())
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/api/v1/demo/events?since=2026-03-01T12:00:30Z")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got struct {
		Data []faults.Event `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Len(t, got.Data, 2, "since filters by time")
	resp2, err := http.Get(srv2.URL + "/api/v1/demo/events?since=yesterday")
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp2.StatusCode)
}

func TestConcurrentSetsAndClearsLeaveSubscribersOnTheCurrentState(t *testing.T) {
	ctx := context.Background()
	for round := range 10 {
		set := faults.New()
		var mu sync.Mutex
		var last *faults.State
		set.Subscribe(func(s *faults.State) {
			// A subscriber does work (the edge resets every limiter).
			time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
			mu.Lock()
			last = s
			mu.Unlock()
		})
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for g := range 8 {
			wg.Go(func() {
				<-begin
				for i := range 10 {
					if (g+i)%3 == 0 {
						_, _ = set.Clear(ctx, "edge.rate_limit", "test")
						continue
					}
					_, err := set.Set(ctx, "edge.rate_limit", strconv.Itoa(1+g*100+i), "test")
					require.NoError(t, err)
				}
			})
		}
		close(begin)
		wg.Wait()
		mu.Lock()
		require.Equal(t, set.State().EdgeRateLimit, last.EdgeRateLimit,
			"round %d: the last state a subscriber (the edge's limiter) saw is the current one", round)
		mu.Unlock()
	}
}

func TestTheFaultAPIOnATiersListenerRequiresTheToken(t *testing.T) {
	set := faults.New()
	srv := httptest.NewServer(faults.RequireToken("s3cret", set.Handler()))
	defer srv.Close()
	send := func(method, path, token string) int {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"value":"1"}`))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, send(http.MethodPut, "/api/v1/demo/faults/store.shard_down", ""))
	require.Equal(t, http.StatusUnauthorized, send(http.MethodPost, "/api/v1/demo/faults/store.shard_down", "wrong"))
	require.Equal(t, http.StatusUnauthorized, send(http.MethodDelete, "/api/v1/demo/faults", ""))
	require.Empty(t, set.Values(), "a refused call changes nothing")
	require.Equal(t, http.StatusOK, send(http.MethodGet, "/api/v1/demo/faults", ""), "reads stay open")
	require.Equal(t, http.StatusOK, send(http.MethodPut, "/api/v1/demo/faults/store.shard_down", "s3cret"))
	require.True(t, set.State().ShardDown[1])
}
