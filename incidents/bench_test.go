package incidents_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/burnrate/burnrate/incidents"
)

func benchSchedule(b *testing.B) *incidents.Schedule {
	sc := incidents.Schedule{ID: "bench", TimeZone: "America/New_York", Layers: []incidents.Layer{
		{Level: 1, Users: []string{"a", "b", "c", "d", "e"}, Start: "2026-01-01", Turn: "hourly"},
		{Level: 2, Users: []string{"f", "g"}, Start: "2026-01-01", Handoff: "09:00", Turn: "daily",
			Restrictions: []incidents.Restriction{{Weekdays: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00"}}},
	}}
	for i := range 50 {
		start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 37 * time.Hour)
		sc.Overrides = append(sc.Overrides, incidents.Override{ID: int64(i + 1), User: "z", Start: start, End: start.Add(3 * time.Hour)})
	}
	if err := sc.Prepare(); err != nil {
		b.Fatal(err)
	}
	return &sc
}

// BenchmarkFinalScheduleOfAYear computes a year of an hourly rotation under
// a restricted daily layer and 50 overrides (the largest range the API
// serves).
func BenchmarkFinalScheduleOfAYear(b *testing.B) {
	sc := benchSchedule(b)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		_ = sc.Final(from, from.AddDate(1, 0, 0))
	}
}

// BenchmarkOnCallAt is "who is on call now", as escalation asks it.
func BenchmarkOnCallAt(b *testing.B) {
	sc := benchSchedule(b)
	at := time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)
	for b.Loop() {
		_ = sc.OnCallAt(at)
	}
}

// limitsSchedule is the largest schedule the default limits allow, shaped
// so that no layer can be skipped: incidents.DefaultMaxLayers layers of
// DefaultMaxUsersPerLayer people, each restricted by
// DefaultMaxRestrictionsPerLayer one-hour windows (two a day, at hours
// that differ from layer to layer, so every layer leaves gaps for the
// ones below), turning every `turn`, with DefaultMaxOverrides overrides
// over the year, every other one replacing a single person.
func limitsSchedule(tb testing.TB, turn string) *incidents.Schedule {
	tb.Helper()
	sc := incidents.Schedule{ID: "limits", TimeZone: "America/New_York"}
	days := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	for l := range incidents.DefaultMaxLayers {
		ly := incidents.Layer{Level: l + 1, Start: "2025-12-29", Handoff: fmt.Sprintf("%02d:00", l%24), Turn: turn}
		for u := range incidents.DefaultMaxUsersPerLayer {
			ly.Users = append(ly.Users, fmt.Sprintf("u%d-%d", l, u))
		}
		h := l % 12
		for r := range incidents.DefaultMaxRestrictionsPerLayer {
			at := h + 12*(r%2)
			ly.Restrictions = append(ly.Restrictions, incidents.Restriction{Weekdays: []string{days[(r/2)%7]},
				Start: fmt.Sprintf("%02d:00", at), End: fmt.Sprintf("%02d:00", (at+1)%24)})
		}
		sc.Layers = append(sc.Layers, ly)
	}
	for i := range incidents.DefaultMaxOverrides {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 8 * time.Hour)
		o := incidents.Override{ID: int64(i + 1), User: "u0-0", Start: start, End: start.Add(3 * time.Hour)}
		if i%2 == 1 {
			o.Replaces = fmt.Sprintf("u%d-%d", i%incidents.DefaultMaxLayers, i%incidents.DefaultMaxUsersPerLayer)
		}
		sc.Overrides = append(sc.Overrides, o)
	}
	if err := sc.Prepare(); err != nil {
		tb.Fatal(err)
	}
	return &sc
}

// BenchmarkFinalScheduleOfAYearAtTheLimits is GET .../final over a year
// (the most the API serves) of limitsSchedule, for daily and hourly turns.
func BenchmarkFinalScheduleOfAYearAtTheLimits(b *testing.B) {
	for _, turn := range []string{"daily", "hourly"} {
		b.Run("turn="+turn, func(b *testing.B) {
			sc := limitsSchedule(b, turn)
			from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				_ = sc.Final(from, from.AddDate(1, 0, 0))
			}
		})
	}
}

// BenchmarkWhoIsOnCallAtTheLimits is GET /api/v1/oncall with
// limitsSchedule (daily turns) stored: read the schedule and its overrides
// from SQLite, who is on call now and who is next (a 90-day look ahead).
func BenchmarkWhoIsOnCallAtTheLimits(b *testing.B) {
	ctx := context.Background()
	svc, err := incidents.Open(ctx, incidents.Options{Path: filepath.Join(b.TempDir(), "incidents.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	sc := limitsSchedule(b, "daily")
	for _, l := range sc.Layers {
		for _, u := range l.Users {
			if err := svc.PutUser(ctx, &incidents.User{ID: u, Name: u}); err != nil {
				b.Fatal(err)
			}
		}
	}
	overrides := sc.Overrides
	if err := svc.PutSchedule(ctx, sc); err != nil {
		b.Fatal(err)
	}
	for _, o := range overrides {
		o.ID = 0
		if _, err := svc.AddOverride(ctx, sc.ID, o); err != nil {
			b.Fatal(err)
		}
	}
	at := time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)
	for b.Loop() {
		oc, err := svc.WhoIsOnCall(ctx, "", at)
		if err != nil || len(oc) != 1 {
			b.Fatal(oc, err)
		}
	}
}
