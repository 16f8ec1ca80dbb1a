package incidents_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/burnrate/burnrate/incidents"
)

// FuzzSchedule feeds schedule documents as the API receives them: Prepare
// refuses or accepts them without panicking, and an accepted schedule
// yields well-formed shifts.
func FuzzSchedule(f *testing.F) {
	f.Add([]byte(`{"id":"p","time_zone":"America/New_York","layers":[{"level":1,"users":["a","b"],"start":"2026-03-01","handoff":"02:30","turn":"daily"}]}`))
	f.Add([]byte(`{"id":"p","time_zone":"Australia/Lord_Howe","layers":[{"level":1,"users":["a"],"start":"2026-04-01","turn":"hourly"},{"level":2,"users":["b","c"],"start":"2026-01-01","turn":"12h","restrictions":[{"weekdays":["sat"],"start":"22:00","end":"01:30"}]}]}`))
	f.Add([]byte(`{"id":"p","time_zone":"Europe/Berlin","layers":[{"level":1,"users":["a"],"start":"2026-03-29","turn":"weekly"}],"overrides":[{"user":"b","start":"2026-03-29T00:30:00Z","end":"2026-03-29T01:30:00Z"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var sc incidents.Schedule
		if json.Unmarshal(doc, &sc) != nil || sc.Prepare() != nil {
			return
		}
		from := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)
		shifts := sc.Final(from, from.Add(72*time.Hour))
		for i, s := range shifts {
			if !s.Start.Before(s.End) {
				t.Fatalf("empty or reversed shift %+v", s)
			}
			if i > 0 && s.Start.Before(shifts[i-1].Start) {
				t.Fatalf("shifts out of order: %+v after %+v", s, shifts[i-1])
			}
		}
		_ = sc.OnCallAt(from.Add(26 * time.Hour))
	})
}
