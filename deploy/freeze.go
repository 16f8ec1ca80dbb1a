package deploy

import (
	"fmt"
	"strings"
	"time"
)

// FreezeWindow is a span of calendar time in which deploys fail: weekly
// (from a weekday and wall-clock time to another, "Fri 16:00" to
// "Mon 08:00") or one-off (from one local date-time to another). Times are
// wall-clock times in the window's IANA zone, so a weekly window starts at
// 16:00 local time in summer and in winter alike; across a DST change the
// window is an hour shorter or longer in absolute time.
type FreezeWindow struct {
	Name     string
	Location *time.Location
	// Weekly windows.
	Weekly               bool
	StartDay, EndDay     time.Weekday
	StartClock, EndClock time.Duration // since local midnight
	// One-off windows, as local wall-clock date-times.
	From, To time.Time
}

// Active returns the window's current span containing t, if t lies in one.
func (f FreezeWindow) Active(t time.Time) (start, end time.Time, ok bool) {
	lt := t.In(f.Location)
	if !f.Weekly {
		start, end = wall(f.From, f.Location), wall(f.To, f.Location)
		return start, end, !lt.Before(start) && lt.Before(end)
	}
	// The latest start at or before t, then the first end after it.
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, f.Location)
	back := (int(lt.Weekday()) - int(f.StartDay) + 7) % 7
	start = at(midnight.AddDate(0, 0, -back), f.StartClock, f.Location, false)
	if start.After(lt) {
		start = at(midnight.AddDate(0, 0, -back-7), f.StartClock, f.Location, false)
	}
	sm := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, f.Location)
	fwd := (int(f.EndDay) - int(f.StartDay) + 7) % 7
	end = at(sm.AddDate(0, 0, fwd), f.EndClock, f.Location, true)
	if !end.After(start) {
		end = at(sm.AddDate(0, 0, fwd+7), f.EndClock, f.Location, true)
	}
	return start, end, lt.Before(end)
}

// at is the instant of wall-clock time clock on the local day of midnight.
// A time that occurs twice (the hour repeated when DST ends) resolves to its
// first occurrence, or its last when last is set; a time that DST skips
// resolves to the instant the clocks jump. So a window never loses the
// wall-clock span it names.
func at(midnight time.Time, clock time.Duration, loc *time.Location, last bool) time.Time {
	h, m := int(clock/time.Hour), int(clock%time.Hour/time.Minute)
	t := time.Date(midnight.Year(), midnight.Month(), midnight.Day(), h, m, 0, 0, loc)
	if t.Hour() != h || t.Minute() != m {
		// Skipped: t lies beside the gap, in one of its two zones.
		start, end := t.ZoneBounds()
		if t.Hour()*60+t.Minute() > h*60+m {
			return start
		}
		return end
	}
	for _, shift := range []time.Duration{30 * time.Minute, time.Hour} {
		for _, c := range []time.Time{t.Add(-shift), t.Add(shift)} {
			if c.Hour() == h && c.Minute() == m && c.Day() == t.Day() {
				if (last && c.After(t)) || (!last && c.Before(t)) {
					t = c
				}
			}
		}
	}
	return t
}

func wall(t time.Time, loc *time.Location) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
}

type specError struct{ field, reason string }

func (e *specError) Error() string { return e.field + ": " + e.reason }

// weekday reads "Fri" or "Friday", in any case.
func weekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(s)
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:3] {
			return d, true
		}
	}
	return 0, false
}

func parseDayClock(s string) (time.Weekday, time.Duration, error) {
	day, clock, ok := strings.Cut(strings.TrimSpace(s), " ")
	wd, known := weekday(day)
	if !ok || !known {
		return 0, 0, fmt.Errorf("%q is not a weekday and time (\"Fri 16:00\")", s)
	}
	c, err := parseClock(strings.TrimSpace(clock))
	if err != nil {
		return 0, 0, fmt.Errorf("%q: %w", s, err)
	}
	return wd, c, nil
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day (16:00)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func (s freezeSpec) build() (FreezeWindow, *specError) {
	fw := FreezeWindow{Name: s.Name}
	if s.TimeZone == "" {
		return fw, &specError{"timezone", "required: an IANA zone such as Europe/Berlin (or UTC)"}
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return fw, &specError{"timezone", fmt.Sprintf("%q is not an IANA time zone", s.TimeZone)}
	}
	fw.Location = loc
	weekly := s.Start != "" || s.End != ""
	oneOff := s.From != "" || s.To != ""
	switch {
	case weekly && oneOff:
		return fw, &specError{"start", "a window is weekly (start, end) or one-off (from, to), not both"}
	case weekly:
		fw.Weekly = true
		var err error
		if fw.StartDay, fw.StartClock, err = parseDayClock(s.Start); err != nil {
			return fw, &specError{"start", err.Error()}
		}
		if fw.EndDay, fw.EndClock, err = parseDayClock(s.End); err != nil {
			return fw, &specError{"end", err.Error()}
		}
		if fw.StartDay == fw.EndDay && fw.StartClock == fw.EndClock {
			return fw, &specError{"end", "equals start: the window would be empty (or a whole week)"}
		}
	case oneOff:
		const layout = "2006-01-02 15:04"
		var err error
		if fw.From, err = time.ParseInLocation(layout, s.From, loc); err != nil {
			return fw, &specError{"from", fmt.Sprintf("%q is not a local date-time (2026-12-24 00:00)", s.From)}
		}
		if fw.To, err = time.ParseInLocation(layout, s.To, loc); err != nil {
			return fw, &specError{"to", fmt.Sprintf("%q is not a local date-time (2026-12-27 00:00)", s.To)}
		}
		if !fw.To.After(fw.From) {
			return fw, &specError{"to", fmt.Sprintf("%s ends before it starts (%s)", s.To, s.From)}
		}
	default:
		return fw, &specError{"start", "required: start and end (weekly) or from and to (one-off)"}
	}
	return fw, nil
}
