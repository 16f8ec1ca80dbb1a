package deploy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/deploy"
)

// wallOracle says whether instant t is frozen by reading t's wall clock in
// the zone field by field (weekday, hour, minute) and comparing tuples, or
// its formatted local date-time as a string: nothing shared with the
// implementation's calendar arithmetic.
// It takes the instant already in the zone (t.In(loc)).
func wallOracle(weekly bool, startDay, endDay time.Weekday, startHM, endHM [2]int, from, to string) func(time.Time) bool {
	key := func(d time.Weekday, h, m int) int { return (int(d)*24+h)*60 + m }
	s, e := key(startDay, startHM[0], startHM[1]), key(endDay, endHM[0], endHM[1])
	return func(lt time.Time) bool {
		if !weekly {
			w := lt.Format("2006-01-02 15:04")
			return w >= from && w < to
		}
		k := key(lt.Weekday(), lt.Hour(), lt.Minute())
		if s < e {
			return k >= s && k < e
		}
		return k >= s || k < e
	}
}

// TestFreezeWindowsAgainstAPerInstantOracleForAYear steps every minute of
// 2026 in zones whose DST changes at midnight (Santiago, Asunción, Beirut,
// Cairo: in both hemispheres), at 02:00 or 03:00 (Berlin, New York), by
// half an hour (Lord Howe), and compares each window's verdict with the
// oracle.
func TestFreezeWindowsAgainstAPerInstantOracleForAYear(t *testing.T) {
	if testing.Short() {
		t.Skip("steps every minute of a year")
	}
	zones := []string{"America/Santiago", "America/Asuncion", "Asia/Beirut", "Africa/Cairo", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"}
	windows := []struct {
		start, end string // weekly
		from, to   string // one-off
	}{
		{start: "Fri 16:00", end: "Mon 08:00"},
		{start: "Sat 23:30", end: "Sun 00:30"}, // across local midnight
		{start: "Sun 00:00", end: "Sun 01:00"}, // the hour a midnight change skips or repeats
		{start: "Sun 01:30", end: "Sun 03:00"}, // across a 02:00 change
		{start: "Wed 09:00", end: "Tue 09:00"}, // six days, wrapping the week
		{from: "2026-04-04 23:00", to: "2026-04-05 01:00"},
		{from: "2026-03-28 23:30", to: "2026-03-29 03:30"},
	}
	parse := func(s string) (time.Weekday, [2]int) {
		var day string
		var h, m int
		_, err := fmt.Sscanf(s, "%3s %d:%d", &day, &h, &m)
		require.NoError(t, err)
		for d := time.Sunday; d <= time.Saturday; d++ {
			if d.String()[:3] == day {
				return d, [2]int{h, m}
			}
		}
		t.Fatalf("weekday %q", day)
		return 0, [2]int{}
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		fws := make([]deploy.FreezeWindow, len(windows))
		oracles := make([]func(time.Time) bool, len(windows))
		for i, w := range windows {
			spec := fmt.Sprintf(`{name: w, timezone: %s, start: %q, end: %q}`, zone, w.start, w.end)
			if w.start == "" {
				spec = fmt.Sprintf(`{name: w, timezone: %s, from: %q, to: %q}`, zone, w.from, w.to)
				oracles[i] = wallOracle(false, 0, 0, [2]int{}, [2]int{}, w.from, w.to)
			} else {
				sd, sc := parse(w.start)
				ed, ec := parse(w.end)
				oracles[i] = wallOracle(true, sd, ed, sc, ec, "", "")
			}
			ps, err := deploy.ParsePolicies("p.yml", []byte("policies:\n  - service: x\n    freeze_windows:\n      - "+spec+"\n"))
			require.NoError(t, err)
			fws[i] = ps[0].FreezeWindows[0]
		}
		frozen := make([]int, len(windows))
		for m := from; m.Before(to); m = m.Add(time.Minute) {
			lt := m.In(loc)
			for i, fw := range fws {
				_, _, got := fw.Active(m)
				if want := oracles[i](lt); got != want {
					t.Fatalf("%s %s%s: at %s (%s local) frozen=%v, the oracle says %v", zone, windows[i].start, windows[i].from,
						m.Format(time.RFC3339), lt.Format("Mon 2006-01-02 15:04 MST"), got, want)
				}
				if got {
					frozen[i]++
				}
			}
		}
		for i, n := range frozen {
			require.Positive(t, n, "%s %s%s is frozen at some minute", zone, windows[i].start, windows[i].from)
		}
	}
}
