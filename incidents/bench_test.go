package incidents_test

import (
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
