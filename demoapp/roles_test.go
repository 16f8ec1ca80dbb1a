package demoapp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
)

// TestEachTierRunsAsItsOwnProcess builds the four roles separately, each
// with its own fault set as separate processes would have, wired by URL.
func TestEachTierRunsAsItsOwnProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := demoapp.DefaultConfig()
	cfg.Load.Enabled, cfg.Instrumentation, cfg.Products = false, false, 20
	startRole := func(o demoapp.Options) (*demoapp.Platform, string) {
		o.Config, o.DataDir, o.Listen = cfg, dir, "127.0.0.1:0"
		o.Faults = faults.New()
		p, err := demoapp.New(context.Background(), o)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done); require.NoError(t, p.Close()) })
		return p, p.URLs()[o.Role][0]
	}
	storeP, storeURL := startRole(demoapp.Options{Role: demoapp.RoleStore})
	_, cacheURL := startRole(demoapp.Options{Role: demoapp.RoleCache, StoreURL: storeURL})
	_, apiURL := startRole(demoapp.Options{Role: demoapp.RoleAPI, CacheURL: cacheURL})
	edgeP, edgeURL := startRole(demoapp.Options{Role: demoapp.RoleEdge, APIURLs: []string{apiURL}})
	require.Equal(t, edgeURL, edgeP.EdgeURL())

	resp, err := http.Get(edgeURL + "/api/products/3")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"id":3`)

	// The store process serves its own fault API.
	req, _ := http.NewRequest(http.MethodPut, storeURL+"/api/v1/demo/faults/store.error_fraction", strings.NewReader(`{"value":"1"}`))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.InDelta(t, 1, storeP.Faults().State().ErrorFraction[faults.Store], 0)
	resp, err = http.Get(edgeURL + "/api/products/4")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

func TestARoleWithoutItsUpstreamIsRefused(t *testing.T) {
	cfg := demoapp.DefaultConfig()
	for role, want := range map[string]string{
		demoapp.RoleCache: "--store-url", demoapp.RoleAPI: "--cache-url", demoapp.RoleEdge: "--api-url", "db": "not one of",
	} {
		_, err := demoapp.New(context.Background(), demoapp.Options{Config: cfg, DataDir: t.TempDir(), Role: role, Listen: "127.0.0.1:0"})
		require.ErrorIs(t, err, demoapp.ErrBadRole)
		require.ErrorContains(t, err, want)
	}
}

func TestATiersOwnFaultAPIRequiresTheAPIToken(t *testing.T) {
	cfg := demoapp.DefaultConfig()
	cfg.Load.Enabled, cfg.Instrumentation, cfg.Products = false, false, 5
	set := faults.New()
	p, err := demoapp.New(context.Background(), demoapp.Options{
		Config: cfg, DataDir: t.TempDir(), Role: demoapp.RoleStore, Listen: "127.0.0.1:0", Faults: set, APIToken: "s3cret",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done); require.NoError(t, p.Close()) })
	u := p.URLs()[demoapp.RoleStore][0] + "/api/v1/demo/faults/store.error_fraction"
	put := func(token string) int {
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(`{"value":"1"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, put(""))
	require.Zero(t, set.State().ErrorFraction[faults.Store])
	require.Equal(t, http.StatusOK, put("s3cret"))
	require.InDelta(t, 1, set.State().ErrorFraction[faults.Store], 0)
}
