package incidents_test

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

func TestTheIncomingPersonIsToldOnceAtHandoffEvenAcrossARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00 UTC (01:00 in Berlin).
		path := filepath.Join(t.TempDir(), "incidents.db")
		r := startService(t, path)
		ctx := context.Background()
		for _, u := range []string{"ann", "ben"} {
			require.NoError(t, r.svc.PutUser(ctx, &incidents.User{ID: u, Name: u}))
		}
		// ben has 31 Dec 09:00 to 1 Jan 09:00 Berlin time, ann the next day.
		require.NoError(t, r.svc.PutSchedule(ctx, &incidents.Schedule{ID: "primary", TimeZone: "Europe/Berlin", Layers: []incidents.Layer{{
			Level: 1, Users: []string{"ann", "ben"}, Start: "1999-12-30", Handoff: "09:00", Turn: "daily"}}}))
		synctest.Wait()
		hs, err := r.svc.Handoffs(ctx, "primary")
		require.NoError(t, err)
		require.Empty(t, hs, "ben's shift began hours ago: no announcement")

		time.Sleep(8*time.Hour + time.Second) // past 09:00 CET
		synctest.Wait()
		hs, err = r.svc.Handoffs(ctx, "primary")
		require.NoError(t, err)
		require.Equal(t, []incidents.Handoff{{Schedule: "primary", User: "ann",
			Start: utc("2000-01-01T08:00:00Z"), End: utc("2000-01-02T08:00:00Z"), SentAt: utc("2000-01-01T08:00:00Z")}}, hs)

		// Down across the next handoff, back five minutes after it.
		r.stop(t)
		time.Sleep(24*time.Hour + 4*time.Minute)
		r = startService(t, path)
		synctest.Wait()
		r.stop(t)
		r = startService(t, path) // and once more: nothing is repeated
		synctest.Wait()
		hs, err = r.svc.Handoffs(ctx, "primary")
		require.NoError(t, err)
		require.Len(t, hs, 2)
		require.Equal(t, "ben", hs[0].User)
		require.Equal(t, utc("2000-01-02T08:00:00Z"), hs[0].Start)
		require.Equal(t, utc("2000-01-02T08:04:01Z"), hs[0].SentAt, "sent at start, once")

		// An override is a handoff too.
		_, err = r.svc.AddOverride(ctx, "primary", incidents.Override{User: "ann", Start: utc("2000-01-02T12:00:00Z"), End: utc("2000-01-02T13:00:00Z")})
		require.NoError(t, err)
		time.Sleep(5 * time.Hour) // to 13:04 UTC
		synctest.Wait()
		hs, err = r.svc.Handoffs(ctx, "primary")
		require.NoError(t, err)
		require.Len(t, hs, 4, "ann at 12:00 for the override, ben back at 13:00")
		require.Equal(t, "ben", hs[0].User)
		require.Equal(t, utc("2000-01-02T13:00:00Z"), hs[0].Start)
		require.Equal(t, "ann", hs[1].User)
		require.Equal(t, utc("2000-01-02T13:00:00Z"), hs[1].End)
	})
}
