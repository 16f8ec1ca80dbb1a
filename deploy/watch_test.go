package deploy_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

func TestTheWatchTellsOnceOfADeployThatRaisedTheBurnRate(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := deploy.OpenStore(ctx, filepath.Join(dir, "deploy.db"))
		require.NoError(t, err)
		defer st.Close()
		src := &source{snaps: map[string]deploy.Snapshot{}}
		before := healthy("checkout-availability")
		before.EvaluatedAt = time.Now()
		src.set("checkout", before)

		var mu sync.Mutex
		var told []string
		g, err := deploy.New(deploy.Options{Policies: deploy.NewPolicies(), Source: src, Store: st,
			OnRegression: func(_ context.Context, d deploy.Deploy, v deploy.Verdict) {
				mu.Lock()
				defer mu.Unlock()
				told = append(told, d.Version+": "+v.Message)
			}})
		require.NoError(t, err)
		_, err = g.RecordDeploy(ctx, deploy.DeployRequest{Service: "checkout", Version: "v2"})
		require.NoError(t, err)
		go func() { _ = g.Watch(ctx, time.Minute) }()

		// The new version burns at 9.1 on the 5m window from the start.
		after := healthy("checkout-availability")
		after.BurnRates[5*time.Minute] = 9.1
		time.Sleep(3 * time.Minute)
		after.EvaluatedAt = time.Now()
		src.set("checkout", after)
		synctest.Wait()
		mu.Lock()
		require.Empty(t, told, "no window lies after the deploy before 5 minutes")
		mu.Unlock()

		time.Sleep(10 * time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, []string{"v2: deploy v2 raised the 5m burn rate from 0.5 to 9.1"}, told, "told once, at the first tick a window lies after the deploy")
	})
}
