package deploy

import (
	"fmt"
	"strings"
	"time"
)

// FreezeWindow is a span of calendar time in which deploys fail: weekly
// (from a weekday and wall-clock time to another, "Fri 16:00" to
// "Mon 08:00") or one-off (from one local date-time to another). Each
// instant is judged in its own local time, as Alertmanager's
// time_intervals judge it: the instant is frozen when the wall clock of
// the window's IANA zone, at that instant, reads a time inside the window.
// So a weekly window starts at 16:00 local time in summer and in winter
// alike; a window starting in the hour DST skips starts when the clocks
// jump; the hour DST repeats is judged each time it passes; and no
// instant is ever built from a local midnight that may not exist.
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

const week = 7 * 24 * time.Hour

// civil is the wall-clock reading of t in its location, as a time in UTC:
// calendar arithmetic on it never meets a DST change.
func civil(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// Active reports whether t lies in the window and, if so, the wall-clock
// start and end of the span that holds it (for messages; in the window's
// zone, as civil times tagged with it).
func (f FreezeWindow) Active(t time.Time) (start, end time.Time, ok bool) {
	now := civil(t.In(f.Location))
	if !f.Weekly {
		from, to := civil(f.From), civil(f.To)
		return f.local(from), f.local(to), !now.Before(from) && now.Before(to)
	}
	// The position in the local week, from Sunday 00:00 wall-clock time.
	sunday := time.Date(now.Year(), now.Month(), now.Day()-int(now.Weekday()), 0, 0, 0, 0, time.UTC)
	pos := now.Sub(sunday)
	s := time.Duration(f.StartDay)*24*time.Hour + f.StartClock
	e := time.Duration(f.EndDay)*24*time.Hour + f.EndClock
	length := (e - s + week) % week
	since := (pos - s + week) % week // how long ago the latest start was
	if since >= length {
		return time.Time{}, time.Time{}, false
	}
	from := now.Add(-since).Truncate(time.Minute)
	return f.local(from), f.local(from.Add(length)), true
}

// local names a civil time in the window's zone, for messages only.
func (f FreezeWindow) local(c time.Time) time.Time {
	return time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), 0, 0, f.Location)
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
