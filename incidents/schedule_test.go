package incidents_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/incidents"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func prepared(t *testing.T, sc incidents.Schedule) *incidents.Schedule {
	t.Helper()
	if sc.ID == "" {
		sc.ID = "primary"
	}
	require.NoError(t, sc.Prepare())
	return &sc
}

// transition is one DST change, hand-written from the tz database: the
// local day it happens on, the wall time inside its skipped or repeated
// hour, and, for fall, the UTC instants of that hour's two passes.
type transition struct {
	zone, day, name string
	spring          bool
	// jump is the instant the clocks change.
	jump time.Time
	// inHour is a wall time inside the skipped or repeated hour; hourStart
	// the wall time that hour begins at.
	inHour, hourStart string
	// overlapHalf is [first, last) occurrence of inHour (fall only);
	// overlapHour the same for hourStart.
	overlapHalf, overlapHour [2]time.Time
}

var transitions = []transition{
	{zone: "America/New_York", day: "2026-03-08", name: "New York spring", spring: true, jump: utc("2026-03-08T07:00:00Z"), inHour: "02:30", hourStart: "02:00"},
	{zone: "America/New_York", day: "2026-11-01", name: "New York fall", jump: utc("2026-11-01T06:00:00Z"), inHour: "01:30", hourStart: "01:00",
		overlapHalf: [2]time.Time{utc("2026-11-01T05:30:00Z"), utc("2026-11-01T06:30:00Z")},
		overlapHour: [2]time.Time{utc("2026-11-01T05:00:00Z"), utc("2026-11-01T06:00:00Z")}},
	{zone: "Europe/Berlin", day: "2026-03-29", name: "Berlin spring", spring: true, jump: utc("2026-03-29T01:00:00Z"), inHour: "02:30", hourStart: "02:00"},
	{zone: "Europe/Berlin", day: "2026-10-25", name: "Berlin fall", jump: utc("2026-10-25T01:00:00Z"), inHour: "02:30", hourStart: "02:00",
		overlapHalf: [2]time.Time{utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:30:00Z")},
		overlapHour: [2]time.Time{utc("2026-10-25T00:00:00Z"), utc("2026-10-25T01:00:00Z")}},
	{zone: "Australia/Sydney", day: "2026-10-04", name: "Sydney spring", spring: true, jump: utc("2026-10-03T16:00:00Z"), inHour: "02:30", hourStart: "02:00"},
	{zone: "Australia/Sydney", day: "2026-04-05", name: "Sydney fall", jump: utc("2026-04-04T16:00:00Z"), inHour: "02:30", hourStart: "02:00",
		overlapHalf: [2]time.Time{utc("2026-04-04T15:30:00Z"), utc("2026-04-04T16:30:00Z")},
		overlapHour: [2]time.Time{utc("2026-04-04T15:00:00Z"), utc("2026-04-04T16:00:00Z")}},
}

func TestRotationsOverWholeDSTTransitionDaysHaveNoGapAndOnlyTheDocumentedOverlap(t *testing.T) {
	for _, tr := range transitions {
		loc, err := time.LoadLocation(tr.zone)
		require.NoError(t, err)
		day, err := time.ParseInLocation("2006-01-02", tr.day, loc)
		require.NoError(t, err)
		start := day.AddDate(0, 0, -14).Format("2006-01-02")
		rotations := []struct {
			name, turn, handoff string
			// overlap is where two people are on call (fall only).
			overlap [2]time.Time
		}{
			{"daily, handing off inside the changing hour", "daily", tr.inHour, tr.overlapHalf},
			{"daily, handing off at 09:00", "daily", "09:00", [2]time.Time{}},
			{"weekly, handing off inside the changing hour", "weekly", tr.inHour, tr.overlapHalf},
			{"hourly", "hourly", "00:00", tr.overlapHour},
			{"every 12 hours from 01:00", "12h", "01:00", [2]time.Time{}},
		}
		for _, rot := range rotations {
			t.Run(tr.name+", "+rot.name, func(t *testing.T) {
				if rot.turn == "12h" && tr.hourStart == "01:00" && !tr.spring {
					// 01:00 is itself repeated in New York's fall: one hour of overlap.
					rot.overlap = tr.overlapHour
				}
				sc := prepared(t, incidents.Schedule{TimeZone: tr.zone, Layers: []incidents.Layer{{
					Level: 1, Users: []string{"ann", "ben", "cat"}, Start: start, Handoff: rot.handoff, Turn: rot.turn,
				}}})
				if tr.spring {
					require.True(t, rot.overlap[0].IsZero())
				}
				// Every minute of the local day, plus an hour either side.
				from, to := day.Add(-time.Hour), day.AddDate(0, 0, 1).Add(time.Hour)
				prev := sc.OnCallAt(from)
				handoffs := 0
				for at := from; at.Before(to); at = at.Add(time.Minute) {
					who := sc.OnCallAt(at)
					inOverlap := !at.Before(rot.overlap[0]) && at.Before(rot.overlap[1])
					if inOverlap {
						require.Len(t, who, 2, "two people in the repeated hour at %s", at.In(loc))
					} else {
						require.Len(t, who, 1, "exactly one person at %s (%s)", at.In(loc), at)
					}
					if fmt.Sprint(who) != fmt.Sprint(prev) {
						handoffs++
					}
					prev = who
				}
				require.Positive(t, handoffs, "the day has handoffs")
				// The final schedule over the day agrees with the minute walk
				// and every shift starts at the stated local time (or, when
				// that time is skipped, at the jump).
				for _, sh := range sc.Final(from, to) {
					if sh.Start.Equal(from) {
						continue
					}
					local := sh.Start.In(loc)
					switch rot.turn {
					case "hourly":
						require.Zero(t, local.Minute(), "hourly shifts stay on the wall-clock hour: %s", local)
					case "12h":
						require.Contains(t, []int{1, 13}, local.Hour(), "%s", local)
					default:
						if tr.spring && rot.handoff == tr.inHour && sh.Start.Equal(tr.jump) {
							continue // 02:30 does not exist that night: the handoff is at the jump
						}
						require.Equal(t, rot.handoff, local.Format("15:04"), "handoff at the stated local time")
					}
				}
			})
		}
	}
}

func TestDailyShiftsAcrossDSTLastTwentyThreeOrTwentyFiveHours(t *testing.T) {
	for _, tr := range transitions {
		t.Run(tr.name, func(t *testing.T) {
			loc, _ := time.LoadLocation(tr.zone)
			day, _ := time.ParseInLocation("2006-01-02", tr.day, loc)
			sc := prepared(t, incidents.Schedule{TimeZone: tr.zone, Layers: []incidents.Layer{{
				Level: 1, Users: []string{"ann", "ben"}, Start: "2026-01-01", Handoff: "09:00", Turn: "daily",
			}}})
			// The shift that began at 09:00 the day before the change.
			at := day.Add(-15 * time.Hour) // 09:00 the previous day, give or take the change
			shifts := sc.Final(at.Add(-time.Minute), at.Add(48*time.Hour))
			var crossing *incidents.Shift
			for i := range shifts {
				if shifts[i].Start.Before(tr.jump) && shifts[i].End.After(tr.jump) {
					crossing = &shifts[i]
				}
			}
			require.NotNil(t, crossing)
			want := 25 * time.Hour
			if tr.spring {
				want = 23 * time.Hour
			}
			require.Equal(t, want, crossing.End.Sub(crossing.Start))
			require.Equal(t, "09:00", crossing.Start.In(loc).Format("15:04"))
			require.Equal(t, "09:00", crossing.End.In(loc).Format("15:04"))
		})
	}
}

func TestAnHourlyTurnInsideASkippedHourIsEmptyAndTheRotationGoesOn(t *testing.T) {
	sc := prepared(t, incidents.Schedule{TimeZone: "America/New_York", Layers: []incidents.Layer{{
		Level: 1, Users: []string{"ann", "ben", "cat"}, Start: "2026-03-08", Turn: "hourly",
	}}})
	// Turns: 00:00 ann, 01:00 ben, 02:00 cat (does not exist), 03:00 ann.
	require.Equal(t, []string{"ben"}, sc.OnCallAt(utc("2026-03-08T06:59:00Z")), "01:59 EST")
	require.Equal(t, []string{"ann"}, sc.OnCallAt(utc("2026-03-08T07:00:00Z")), "03:00 EDT")
}

// nyOverrides is a New York schedule for hand-computed cases: ann, ben and
// cat take daily turns at 09:00 from Monday 2 March 2026 (09:00 EST is
// 14:00Z): ann on 2 and 5 March, ben on 3 and 6, cat on 4 and 7.
func nyOverrides(t *testing.T, overrides ...incidents.Override) *incidents.Schedule {
	return prepared(t, incidents.Schedule{TimeZone: "America/New_York", Overrides: overrides, Layers: []incidents.Layer{{
		Level: 1, Name: "primary", Users: []string{"ann", "ben", "cat"}, Start: "2026-03-02", Handoff: "09:00", Turn: "daily",
	}}})
}

func TestHandComputedOverridesSwapsRestrictionsAndLayers(t *testing.T) {
	cases := []struct {
		name  string
		sc    func(t *testing.T) *incidents.Schedule
		at    string
		want  []string
		wantN string // who is next, and from when (UTC)
	}{
		{"before the first turn nobody is on call", func(t *testing.T) *incidents.Schedule { return nyOverrides(t) },
			"2026-03-02T13:59:00Z", nil, "ann@2026-03-02T14:00:00Z"},
		{"the rotation's first turn", func(t *testing.T) *incidents.Schedule { return nyOverrides(t) },
			"2026-03-02T14:00:00Z", []string{"ann"}, "ben@2026-03-03T14:00:00Z"},
		{"the rotation wraps to its first user", func(t *testing.T) *incidents.Schedule { return nyOverrides(t) },
			"2026-03-05T20:00:00Z", []string{"ann"}, "ben@2026-03-06T14:00:00Z"},
		{"an override without replaces takes the whole schedule", func(t *testing.T) *incidents.Schedule {
			return nyOverrides(t, incidents.Override{ID: 1, User: "dan", Start: utc("2026-03-03T17:00:00Z"), End: utc("2026-03-03T20:00:00Z")})
		}, "2026-03-03T18:00:00Z", []string{"dan"}, "ben@2026-03-03T20:00:00Z"},
		{"next on call sees an override coming", func(t *testing.T) *incidents.Schedule {
			return nyOverrides(t, incidents.Override{ID: 1, User: "dan", Start: utc("2026-03-03T17:00:00Z"), End: utc("2026-03-03T20:00:00Z")})
		}, "2026-03-03T15:00:00Z", []string{"ben"}, "dan@2026-03-03T17:00:00Z"},
		{"an override ends where it says", func(t *testing.T) *incidents.Schedule {
			return nyOverrides(t, incidents.Override{ID: 1, User: "dan", Start: utc("2026-03-03T17:00:00Z"), End: utc("2026-03-03T20:00:00Z")})
		}, "2026-03-03T20:00:00Z", []string{"ben"}, "cat@2026-03-04T14:00:00Z"},
		{"an override replacing someone not on call changes nothing", func(t *testing.T) *incidents.Schedule {
			return nyOverrides(t, incidents.Override{ID: 1, User: "dan", Replaces: "cat", Start: utc("2026-03-03T17:00:00Z"), End: utc("2026-03-03T20:00:00Z")})
		}, "2026-03-03T18:00:00Z", []string{"ben"}, "cat@2026-03-04T14:00:00Z"},
		{"a later override wins over an earlier one", func(t *testing.T) *incidents.Schedule {
			return nyOverrides(t,
				incidents.Override{ID: 1, User: "dan", Start: utc("2026-03-03T17:00:00Z"), End: utc("2026-03-03T20:00:00Z")},
				incidents.Override{ID: 2, User: "eve", Replaces: "dan", Start: utc("2026-03-03T18:00:00Z"), End: utc("2026-03-03T19:00:00Z")})
		}, "2026-03-03T18:30:00Z", []string{"eve"}, "dan@2026-03-03T19:00:00Z"},
		{"a swap is two overrides: ann takes ben's 6 March", func(t *testing.T) *incidents.Schedule {
			return nyOverrides(t,
				incidents.Override{ID: 1, User: "ben", Replaces: "ann", Start: utc("2026-03-05T14:00:00Z"), End: utc("2026-03-06T14:00:00Z")},
				incidents.Override{ID: 2, User: "ann", Replaces: "ben", Start: utc("2026-03-06T14:00:00Z"), End: utc("2026-03-07T14:00:00Z")})
		}, "2026-03-06T20:00:00Z", []string{"ann"}, "cat@2026-03-07T14:00:00Z"},
		{"a higher layer restricted to weekday office hours wins inside them", twoLayers, "2026-03-02T15:00:00Z", []string{"oli"}, "ann@2026-03-02T22:00:00Z"},
		{"outside the restriction the lower layer fills in", twoLayers, "2026-03-02T22:30:00Z", []string{"ann"}, "oli@2026-03-03T14:00:00Z"},
		{"the restriction skips the weekend", twoLayers, "2026-03-07T15:00:00Z", []string{"cat"}, "ann@2026-03-08T13:00:00Z"},
		{"a restriction across midnight covers the early morning", nightShift, "2026-03-03T09:30:00Z", []string{"nia"}, "ann@2026-03-03T11:00:00Z"},
		{"a restriction across midnight starts on its weekday's evening", nightShift, "2026-03-03T02:59:00Z", []string{"ann"}, "nia@2026-03-03T03:00:00Z"},
		{"after a restricted window the lower layer resumes", nightShift, "2026-03-03T11:30:00Z", []string{"ann"}, "ben@2026-03-03T14:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.sc(t)
			at := utc(tc.at)
			require.Equal(t, tc.want, sc.OnCallAt(at))
			next := sc.Next(at)
			require.NotEmpty(t, next)
			require.Equal(t, tc.wantN, next[0].User+"@"+next[0].Start.UTC().Format(time.RFC3339))
			// The final schedule says the same as OnCallAt.
			var inFinal []string
			for _, sh := range sc.Final(at.Add(-time.Hour), at.Add(time.Hour)) {
				if !sh.Start.After(at) && sh.End.After(at) {
					inFinal = append(inFinal, sh.User)
				}
			}
			require.Equal(t, tc.want, inFinal)
		})
	}
}

// twoLayers: oli covers weekdays 09:00-17:00 New York time (14:00-22:00Z in
// March before DST) above the ann/ben/cat rotation.
func twoLayers(t *testing.T) *incidents.Schedule {
	return prepared(t, incidents.Schedule{TimeZone: "America/New_York", Layers: []incidents.Layer{
		{Level: 1, Name: "base", Users: []string{"ann", "ben", "cat"}, Start: "2026-03-02", Handoff: "09:00", Turn: "daily"},
		{Level: 2, Name: "office", Users: []string{"oli"}, Start: "2026-03-02", Turn: "weekly",
			Restrictions: []incidents.Restriction{{Weekdays: []string{"monday", "tuesday", "wednesday", "thursday", "friday"}, Start: "09:00", End: "17:00"}}},
	}})
}

// nightShift: nia covers Monday night 22:00 to Tuesday 06:00 New York time
// (03:00Z to 11:00Z on 3 March) above the rotation.
func nightShift(t *testing.T) *incidents.Schedule {
	return prepared(t, incidents.Schedule{TimeZone: "America/New_York", Layers: []incidents.Layer{
		{Level: 1, Users: []string{"ann", "ben", "cat"}, Start: "2026-03-02", Handoff: "09:00", Turn: "daily"},
		{Level: 5, Users: []string{"nia"}, Start: "2026-03-01", Turn: "daily",
			Restrictions: []incidents.Restriction{{Weekdays: []string{"mon"}, Start: "22:00", End: "06:00"}}},
	}})
}

func TestScheduleValidationNamesTheField(t *testing.T) {
	layer := func() incidents.Layer {
		return incidents.Layer{Level: 1, Users: []string{"ann"}, Start: "2026-03-02", Turn: "daily"}
	}
	cases := []struct {
		name  string
		mut   func(*incidents.Schedule)
		field string
	}{
		{"an unknown time zone", func(s *incidents.Schedule) { s.TimeZone = "Mars/Olympus" }, "time_zone"},
		{"a missing time zone", func(s *incidents.Schedule) { s.TimeZone = "" }, "time_zone"},
		{"no layers", func(s *incidents.Schedule) { s.Layers = nil }, "layers"},
		{"an empty layer", func(s *incidents.Schedule) { s.Layers[0].Users = nil }, "layers[0].users"},
		{"overlapping layers at one level", func(s *incidents.Schedule) { s.Layers = append(s.Layers, layer()) }, "layers[1].level"},
		{"a bad start date", func(s *incidents.Schedule) { s.Layers[0].Start = "02/03/2026" }, "layers[0].start"},
		{"a start in year one", func(s *incidents.Schedule) { s.Layers[0].Start = "0001-01-01" }, "layers[0].start"},
		{"a bad handoff", func(s *incidents.Schedule) { s.Layers[0].Handoff = "25:00" }, "layers[0].handoff"},
		{"a bad turn", func(s *incidents.Schedule) { s.Layers[0].Turn = "fortnightly" }, "layers[0].turn"},
		{"a bad weekday", func(s *incidents.Schedule) {
			s.Layers[0].Restrictions = []incidents.Restriction{{Weekdays: []string{"funday"}, Start: "09:00", End: "17:00"}}
		}, "layers[0].restrictions[0].weekdays"},
		{"an empty restriction window", func(s *incidents.Schedule) {
			s.Layers[0].Restrictions = []incidents.Restriction{{Start: "09:00", End: "09:00"}}
		}, "layers[0].restrictions[0].end"},
		{"overlapping restrictions", func(s *incidents.Schedule) {
			s.Layers[0].Restrictions = []incidents.Restriction{{Start: "09:00", End: "17:00"}, {Weekdays: []string{"tue"}, Start: "16:00", End: "18:00"}}
		}, "layers[0].restrictions[1]"},
		{"an override ending before it starts", func(s *incidents.Schedule) {
			s.Overrides = []incidents.Override{{User: "ann", Start: utc("2026-03-03T10:00:00Z"), End: utc("2026-03-03T09:00:00Z")}}
		}, "overrides[0].end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := incidents.Schedule{ID: "s", TimeZone: "Europe/Berlin", Layers: []incidents.Layer{layer()}}
			tc.mut(&sc)
			err := sc.Prepare()
			var fe *incidents.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.field, fe.Field, err.Error())
			require.ErrorIs(t, err, incidents.ErrInvalid)
		})
	}
}
