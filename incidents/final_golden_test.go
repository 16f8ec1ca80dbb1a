package incidents_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/burnrate/burnrate/incidents"
)

// lcg is a small deterministic generator, so the golden file does not
// depend on math/rand's streams.
type lcg uint64

func (g *lcg) intn(n int) int {
	*g = *g*6364136223846793005 + 1442695040888963407
	return int(uint64(*g>>33) % uint64(n))
}

// TestFinalOfVariedSchedulesMatchesTheGoldenFile computes the final
// schedule, who is on call and who is next for generated schedules (zones
// with DST and a half-hour DST, every kind of turn, restrictions that
// cross midnight, overrides with and without replaces) and compares them
// with testdata/final.golden.txt, written by the straightforward
// computation Final had before it was made fast.
func TestFinalOfVariedSchedulesMatchesTheGoldenFile(t *testing.T) {
	g := lcg(42)
	zones := []string{"America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"}
	turns := []string{"hourly", "daily", "weekly", "12h", "5h", "23h", "336h"}
	days := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	// Ranges around the 2026 transitions of the zones above, and ordinary
	// days.
	anchors := []time.Time{
		time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 4, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC),
	}
	var b strings.Builder
	for n := 0; n < 120; n++ {
		sc := incidents.Schedule{ID: "s", TimeZone: zones[g.intn(len(zones))]}
		for l := range 1 + g.intn(4) {
			ly := incidents.Layer{Level: l, Start: fmt.Sprintf("2026-%02d-%02d", 1+g.intn(10), 1+g.intn(28)),
				Turn: turns[g.intn(len(turns))], Handoff: fmt.Sprintf("%02d:%02d", g.intn(24), 30*g.intn(2))}
			for u := range 1 + g.intn(4) {
				ly.Users = append(ly.Users, fmt.Sprintf("u%d", (l*3+u)%7))
			}
			if g.intn(2) == 0 {
				h := g.intn(24)
				r := incidents.Restriction{Start: fmt.Sprintf("%02d:30", h), End: fmt.Sprintf("%02d:00", (h+1+g.intn(20))%24)}
				if g.intn(2) == 0 {
					r.Weekdays = []string{days[g.intn(7)], days[g.intn(7)]}
				}
				ly.Restrictions = []incidents.Restriction{r}
			}
			sc.Layers = append(sc.Layers, ly)
		}
		from := anchors[g.intn(len(anchors))].Add(time.Duration(g.intn(48)) * time.Hour)
		to := from.Add(time.Duration(6+g.intn(90)) * time.Hour)
		for i := range g.intn(8) {
			st := from.Add(time.Duration(g.intn(4*100)-40) * 15 * time.Minute)
			o := incidents.Override{ID: int64(i + 1), User: fmt.Sprintf("u%d", g.intn(8)), Start: st,
				End: st.Add(time.Duration(1+g.intn(40)) * 15 * time.Minute)}
			if g.intn(2) == 0 {
				if o.Replaces = fmt.Sprintf("u%d", g.intn(8)); o.Replaces == o.User {
					o.Replaces = ""
				}
			}
			sc.Overrides = append(sc.Overrides, o)
		}
		if err := sc.Prepare(); err != nil {
			fmt.Fprintf(&b, "case %d: refused: %v\n", n, err)
			continue
		}
		at := from.Add(time.Duration(g.intn(int(to.Sub(from)/time.Minute))) * time.Minute)
		fmt.Fprintf(&b, "case %d: %s %s..%s\n", n, sc.TimeZone, from.Format(time.RFC3339), to.Format(time.RFC3339))
		for _, s := range sc.Final(from, to) {
			fmt.Fprintf(&b, "  %s %s %s %s\n", s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339), s.User, s.Layer)
		}
		fmt.Fprintf(&b, "  at %s: %v; next:", at.Format(time.RFC3339), sc.OnCallAt(at))
		for _, s := range sc.Next(at) {
			fmt.Fprintf(&b, " %s@%s", s.User, s.Start.Format(time.RFC3339))
		}
		b.WriteString("\n")
	}
	golden(t, "final.golden.txt", []byte(b.String()))
}
