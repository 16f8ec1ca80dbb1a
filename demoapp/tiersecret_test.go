package demoapp_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp"
	"github.com/burnrate/burnrate/demoapp/faults"
)

func send(t *testing.T, method, u, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestTheCacheAndTheStoreRefuseWritesFromOutsideThePlatform: a PUT straight
// to the cache (or the store) used to overwrite a product the edge then
// served. Now only the platform's own tiers, which carry its secret, write.
func TestTheCacheAndTheStoreRefuseWritesFromOutsideThePlatform(t *testing.T) {
	tierCalls(t, func(t *testing.T, mut func(*demoapp.Config)) {
		r := start(t, mut)
		urls := r.URLs()
		_, before := r.do(t, http.MethodGet, "/api/products/1", "")
		require.Contains(t, before, `"id":1`)

		code, body := send(t, http.MethodPut, urls[demoapp.RoleCache][0]+"/kv/product:1", `{"id":1,"name":"forged"}`)
		require.Equal(t, http.StatusUnauthorized, code, body)
		code, body = send(t, http.MethodPost, urls[demoapp.RoleCache][0]+"/batch", `[{"k":"product:1","v":{"id":1,"name":"forged"}}]`)
		require.Equal(t, http.StatusUnauthorized, code, body)
		for n := range r.cfg.Shards {
			code, body = send(t, http.MethodPut, urls[demoapp.RoleStore][0]+"/shards/"+strconv.Itoa(n)+"/kv/product:1", `{"id":1,"name":"forged"}`)
			require.Equal(t, http.StatusUnauthorized, code, body)
		}
		code, body = send(t, http.MethodPut, urls[demoapp.RoleCache][0]+"/kv/product:1", `{"id":1,"name":"forged"}`,
			demoapp.TierSecretHeader, "a guess")
		require.Equal(t, http.StatusUnauthorized, code, body)

		_, after := r.do(t, http.MethodGet, "/api/products/1", "")
		require.Equal(t, before, after, "the edge serves the product unchanged")
		require.NotContains(t, after, "forged")

		// Reads stay open, and writes through the public API (whose tiers
		// carry the secret) still land.
		code, _ = send(t, http.MethodGet, urls[demoapp.RoleCache][0]+"/kv/product:1", "")
		require.Equal(t, http.StatusOK, code)
		resp, body := r.do(t, http.MethodPut, "/api/carts/ann/items/3", `{"qty":2}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		_, body = r.do(t, http.MethodGet, "/api/carts/ann", "")
		require.Contains(t, body, `"qty":2`)
	})
}

// TestSeparateTierProcessesShareTheAPITokenAsTheirSecret: tiers run as
// separate processes (`burnrate demo --role ...`) with api_token set
// write to each other with it, and refuse writes without it.
func TestSeparateTierProcessesShareTheAPITokenAsTheirSecret(t *testing.T) {
	dir := t.TempDir()
	cfg := demoapp.DefaultConfig()
	cfg.Load.Enabled, cfg.Instrumentation, cfg.Products = false, false, 20
	const token = "tier-token-1"
	startRole := func(o demoapp.Options) string {
		o.Config, o.DataDir, o.Listen, o.APIToken = cfg, dir, "127.0.0.1:0", token
		o.Faults = faults.New()
		p, err := demoapp.New(context.Background(), o)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done); require.NoError(t, p.Close()) })
		return p.URLs()[o.Role][0]
	}
	storeURL := startRole(demoapp.Options{Role: demoapp.RoleStore})
	cacheURL := startRole(demoapp.Options{Role: demoapp.RoleCache, StoreURL: storeURL})
	apiURL := startRole(demoapp.Options{Role: demoapp.RoleAPI, CacheURL: cacheURL})

	code, body := send(t, http.MethodPut, apiURL+"/api/carts/bob/items/2", `{"qty":1}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = send(t, http.MethodPut, cacheURL+"/kv/product:1", `{"id":1}`)
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, body = send(t, http.MethodPut, cacheURL+"/kv/product:1", `{"id":1,"name":"by the operator"}`, demoapp.TierSecretHeader, token)
	require.Equal(t, http.StatusNoContent, code, body)
}
