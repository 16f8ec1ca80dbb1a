package incidents

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Schedule is an on-call schedule: layers of rotations computed in one IANA
// time zone, with overrides on top.
//
// DST rule (GoAlert's): a shift that starts at a local wall-clock time
// starts at the first instant the clock shows that time and ends at the
// last instant it shows its end time. So:
//   - in a skipped hour (spring forward) a wall time that does not exist
//     maps to the instant the clocks jump: a handoff at 02:30 on a night
//     that goes from 02:00 to 03:00 happens at 03:00, and nothing is lost;
//     a shift lying wholly inside the skipped hour (an hourly rotation's
//     02:00 turn) is empty, and the next person takes over at 03:00;
//   - in a repeated hour (fall back) a handoff at 01:30 on a night that
//     shows 01:00-02:00 twice is covered by both people for that hour: the
//     outgoing one until the second 01:30, the incoming one from the first.
//
// Daily and weekly shifts therefore last 23 or 25 hours across a change
// and hand off at the stated local time; hourly rotations stay on the
// wall-clock hour.
type Schedule struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// TimeZone is an IANA zone name (Europe/Berlin); every layer and
	// restriction is read in it.
	TimeZone string  `json:"time_zone"`
	Layers   []Layer `json:"layers"`
	// Overrides are stored separately and filled in on load.
	Overrides []Override `json:"overrides,omitempty"`

	loc *time.Location
}

// Layer is one rotation. Where several layers have someone on call, the
// highest Level wins; lower layers fill the gaps left by restrictions.
type Layer struct {
	Name  string `json:"name,omitempty"`
	Level int    `json:"level"`
	// Users take turns in this order.
	Users []string `json:"users"`
	// Start is the local date (YYYY-MM-DD) of the first turn; Handoff is
	// the local time of day turns change (HH:MM, default 00:00).
	Start   string `json:"start"`
	Handoff string `json:"handoff,omitempty"`
	// Turn is hourly, daily, weekly or a number of hours ("12h").
	Turn         string        `json:"turn"`
	Restrictions []Restriction `json:"restrictions,omitempty"`

	start time.Time // naive wall clock (UTC fields)
	turn  time.Duration
}

// Restriction limits a layer to a window of local time: from Start to End
// (HH:MM; an End not after Start crosses midnight) on the listed weekdays
// (the day the window starts; empty means every day).
type Restriction struct {
	Weekdays []string `json:"weekdays,omitempty"`
	Start    string   `json:"start"`
	End      string   `json:"end"`

	days       [7]bool
	start, end time.Duration
}

// Override puts User on call from Start to End. With Replaces empty it
// replaces everyone on call; otherwise only Replaces, when on call.
type Override struct {
	ID       int64     `json:"id"`
	User     string    `json:"user"`
	Replaces string    `json:"replaces,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Note     string    `json:"note,omitempty"`
	// CreatedBy is who added it (set by the server).
	CreatedBy string `json:"created_by,omitempty"`
}

// Shift is a person on call over [Start, End).
type Shift struct {
	User  string    `json:"user"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Layer names the layer, or "override".
	Layer string `json:"layer,omitempty"`
}

var weekdayNames = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func parseClock(field, v string) (time.Duration, error) {
	h, m, ok := strings.Cut(v, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, invalid(field, "%q is not a time of day HH:MM", v)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

func parseTurn(field, v string) (time.Duration, error) {
	switch v {
	case "hourly":
		return time.Hour, nil
	case "daily":
		return 24 * time.Hour, nil
	case "weekly":
		return 7 * 24 * time.Hour, nil
	}
	if n, ok := strings.CutSuffix(v, "h"); ok {
		if h, err := strconv.Atoi(n); err == nil && h > 0 && h <= 24*28 {
			return time.Duration(h) * time.Hour, nil
		}
	}
	return 0, invalid(field, "%q is not hourly, daily, weekly or a number of hours such as 12h", v)
}

// Prepare validates the schedule and compiles it. Errors name the field
// (time_zone, layers[1].users, layers[0].restrictions[0].end).
func (sc *Schedule) Prepare() error {
	if err := validID("id", sc.ID); err != nil {
		return err
	}
	if sc.TimeZone == "" {
		return invalid("time_zone", "must be an IANA zone name such as Europe/Berlin")
	}
	loc, err := time.LoadLocation(sc.TimeZone)
	if err != nil || sc.TimeZone == "Local" {
		return invalid("time_zone", "unknown time zone %q", sc.TimeZone)
	}
	sc.loc = loc
	if len(sc.Layers) == 0 {
		return invalid("layers", "must not be empty")
	}
	levels := map[int]int{}
	for i := range sc.Layers {
		l := &sc.Layers[i]
		f := fmt.Sprintf("layers[%d]", i)
		if j, dup := levels[l.Level]; dup {
			return invalid(f+".level", "%d is also the level of layers[%d]: layers overlap, give each its own level", l.Level, j)
		}
		levels[l.Level] = i
		if len(l.Users) == 0 {
			return invalid(f+".users", "must not be empty")
		}
		for j, u := range l.Users {
			if strings.TrimSpace(u) == "" {
				return invalid(fmt.Sprintf("%s.users[%d]", f, j), "must not be empty")
			}
		}
		day, err := time.Parse("2006-01-02", l.Start)
		if err != nil {
			return invalid(f+".start", "%q is not a date YYYY-MM-DD", l.Start)
		}
		if day.Year() < 1970 || day.Year() > 2200 {
			return invalid(f+".start", "%q is outside the years 1970 to 2200", l.Start)
		}
		var handoff time.Duration
		if l.Handoff != "" {
			if handoff, err = parseClock(f+".handoff", l.Handoff); err != nil {
				return err
			}
		}
		l.start = day.Add(handoff)
		if l.turn, err = parseTurn(f+".turn", l.Turn); err != nil {
			return err
		}
		if l.Name == "" {
			l.Name = fmt.Sprintf("layer %d", l.Level)
		}
		for k := range l.Restrictions {
			r := &l.Restrictions[k]
			rf := fmt.Sprintf("%s.restrictions[%d]", f, k)
			if r.start, err = parseClock(rf+".start", r.Start); err != nil {
				return err
			}
			if r.end, err = parseClock(rf+".end", r.End); err != nil {
				return err
			}
			if r.start == r.end {
				return invalid(rf+".end", "must differ from start")
			}
			r.days = [7]bool{}
			if len(r.Weekdays) == 0 {
				r.days = [7]bool{true, true, true, true, true, true, true}
			}
			for _, d := range r.Weekdays {
				wd, ok := weekdayNames[strings.ToLower(d)]
				if !ok {
					return invalid(rf+".weekdays", "%q is not a weekday", d)
				}
				r.days[wd] = true
			}
		}
		if err := checkRestrictionOverlap(f, l.Restrictions); err != nil {
			return err
		}
	}
	for i, o := range sc.Overrides {
		if err := o.validate(fmt.Sprintf("overrides[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

func (o Override) validate(prefix string) error {
	if strings.TrimSpace(o.User) == "" {
		return invalid(prefix+"user", "must not be empty")
	}
	if o.Start.IsZero() {
		return invalid(prefix+"start", "must be an RFC 3339 time")
	}
	if !o.End.After(o.Start) {
		return invalid(prefix+"end", "%s is not after start %s", o.End.Format(time.RFC3339), o.Start.Format(time.RFC3339))
	}
	if o.Replaces == o.User {
		return invalid(prefix+"replaces", "cannot be the override's own user")
	}
	return nil
}

// checkRestrictionOverlap refuses restrictions of one layer whose weekly
// windows overlap: the overlap would be ambiguous to read.
func checkRestrictionOverlap(f string, rs []Restriction) error {
	const week = 7 * 24 * time.Hour
	type span struct {
		from, to time.Duration
		idx      int
	}
	var spans []span
	for i, r := range rs {
		length := r.end - r.start
		if length <= 0 {
			length += 24 * time.Hour
		}
		for d := range 7 {
			if r.days[d] {
				from := time.Duration(d)*24*time.Hour + r.start
				spans = append(spans, span{from, from + length, i})
				spans = append(spans, span{from + week, from + week + length, i}) // wrap-around
			}
		}
	}
	for a := range spans {
		for b := range spans {
			x, y := spans[a], spans[b]
			if x.idx < y.idx && x.from < y.to && y.from < x.to {
				return invalid(fmt.Sprintf("%s.restrictions[%d]", f, y.idx), "overlaps restrictions[%d]", x.idx)
			}
		}
	}
	return nil
}

// Location is the schedule's zone (after Prepare).
func (sc *Schedule) Location() *time.Location { return sc.loc }

// naive reads t's wall clock in loc as a UTC time, so that wall-clock
// arithmetic (add a day, add an hour) ignores DST.
func naive(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// occurrences returns the first and the last instant at which loc's wall
// clock reads w (a naive time). They differ in a repeated hour. In a
// skipped hour both are the instant the clocks jump forward.
func occurrences(w time.Time, loc *time.Location) (first, last time.Time) {
	var offs []int
	for _, d := range []time.Duration{-48 * time.Hour, -24 * time.Hour, 0, 24 * time.Hour, 48 * time.Hour} {
		_, o := w.Add(d).In(loc).Zone()
		if !containsInt(offs, o) {
			offs = append(offs, o)
		}
	}
	var cands []time.Time
	for _, o := range offs {
		t := w.Add(-time.Duration(o) * time.Second)
		cands = append(cands, t)
		if naive(t, loc).Equal(w) {
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if last.IsZero() || t.After(last) {
				last = t
			}
		}
	}
	if !first.IsZero() {
		return first, last
	}
	// w falls in a gap: find the transition between the candidates.
	sort.Slice(cands, func(i, j int) bool { return cands[i].Before(cands[j]) })
	lo, hi := cands[0], cands[len(cands)-1]
	for _, c := range cands {
		if zs, _ := c.In(loc).ZoneBounds(); !zs.IsZero() && zs.After(lo) && !zs.After(hi) {
			return zs.UTC(), zs.UTC()
		}
	}
	return hi, hi
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// span returns the instants of the wall-clock interval [from, to): from its
// first occurrence to the last occurrence of its end (the DST rule).
func (z *zoneTable) span(from, to time.Time) (time.Time, time.Time) {
	s, _ := z.occurrences(from)
	_, e := z.occurrences(to)
	return s, e
}

// zoneTable is a zone's offsets over a range of instants, read once, so
// that placing a wall-clock time (occurrences) looks nothing up in the
// time.Location: a year of an hourly rotation places some 17,000 of them,
// and each lookup costs several of the zone's binary searches.
type zoneTable struct {
	loc *time.Location
	// periods are contiguous and in order; lo and hi (naive Unix
	// seconds) bound the wall times the table answers for.
	periods []zonePeriod
	lo, hi  int64
}

// zonePeriod is [start, end) in Unix seconds at offset off (seconds east
// of UTC); math.MinInt64 and math.MaxInt64 stand for no bound.
type zonePeriod struct {
	start, end, off int64
}

// zoneMargin widens a table's range: turns (at most 28 days) and the
// restriction windows read around them start and end outside it.
const zoneMargin = 35 * 24 * time.Hour

func newZoneTable(loc *time.Location, from, to time.Time) *zoneTable {
	lo, hi := from.Add(-zoneMargin), to.Add(zoneMargin)
	z := &zoneTable{loc: loc, lo: lo.Unix() + 2*86400, hi: hi.Unix() - 2*86400}
	for t := lo; ; {
		lt := t.In(loc)
		_, off := lt.Zone()
		s, e := lt.ZoneBounds()
		p := zonePeriod{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
		if !s.IsZero() {
			p.start = s.Unix()
		}
		if !e.IsZero() {
			p.end = e.Unix()
		}
		z.periods = append(z.periods, p)
		if e.IsZero() || !e.Before(hi) || !e.After(t) {
			break
		}
		t = e
	}
	return z
}

// naiveEnd is the wall time (naive Unix seconds) at which p ends.
func (p zonePeriod) naiveEnd() int64 {
	if p.end == math.MaxInt64 {
		return p.end
	}
	return p.end + p.off
}

// naiveStart is the wall time (naive Unix seconds) at which p starts.
func (p zonePeriod) naiveStart() int64 {
	if p.start == math.MinInt64 {
		return p.start
	}
	return p.start + p.off
}

// occurrences is the package's occurrences, read from the table: the
// first and last instant at which the wall clock reads w. A wall time
// outside the table's range falls back to the zone itself.
func (z *zoneTable) occurrences(w time.Time) (first, last time.Time) {
	ws := w.Unix()
	if ws < z.lo || ws > z.hi {
		return occurrences(w, z.loc)
	}
	// The first period whose wall clock passes w; w may also show in the
	// next one (a repeated hour), or in neither (a skipped hour).
	i, _ := slices.BinarySearchFunc(z.periods, ws, func(p zonePeriod, ws int64) int {
		if p.naiveEnd() <= ws {
			return -1
		}
		return 1
	})
	if i == len(z.periods) {
		return occurrences(w, z.loc)
	}
	found := false
	for j := i; j < len(z.periods) && j <= i+1; j++ {
		p := z.periods[j]
		if p.naiveStart() <= ws && ws < p.naiveEnd() {
			t := w.Add(-time.Duration(p.off) * time.Second)
			if !found {
				first = t
			}
			last, found = t, true
		}
	}
	if found {
		return first, last
	}
	if p := z.periods[i]; p.start != math.MinInt64 && ws < p.naiveStart() {
		// A skipped hour: the clocks jump at the period's start.
		t := time.Unix(p.start, 0).UTC()
		return t, t
	}
	return occurrences(w, z.loc)
}

// layerShifts returns the turns of layer l that overlap [from, to), after
// restrictions, clipped to the range.
func (sc *Schedule) layerShifts(l *Layer, from, to time.Time, z *zoneTable) []Shift {
	// Index of the turn holding from, minus one for DST overlaps.
	w := naive(from, sc.loc).Add(-48 * time.Hour)
	first := 0
	if w.After(l.start) {
		first = int(w.Sub(l.start) / l.turn)
	}
	if len(l.Restrictions) > 0 {
		return sc.restrictedShifts(l, first, from, to, z)
	}
	var out []Shift
	for i := first; ; i++ {
		ws := l.start.Add(time.Duration(i) * l.turn)
		s, e := z.span(ws, ws.Add(l.turn))
		if !s.Before(to) {
			break
		}
		if !e.After(from) || !s.Before(e) {
			continue
		}
		out = appendClipped(out, Shift{User: l.Users[i%len(l.Users)], Start: s, End: e, Layer: l.Name}, from, to)
	}
	return out
}

// restrictedShifts is layerShifts for a layer with restrictions: the
// pieces of its turns (from turn first on) inside its windows, in order of
// turn, then of window. It starts from the windows and places only the
// turns that overlap one: an hourly layer restricted to two hours a day
// places 730 turns a year, not 8,760.
func (sc *Schedule) restrictedShifts(l *Layer, first int, from, to time.Time, z *zoneTable) []Shift {
	// Windows from well before the first turn (which starts at most 48
	// hours and a turn before from) to after the last.
	wins := sc.restrictionWindows(l, from.Add(-96*time.Hour-l.turn), to.Add(l.turn+48*time.Hour), z)
	type piece struct {
		turn, win int
		sh        Shift
	}
	var pieces []piece
	for k, win := range wins {
		// The turn holding the window's start, less one for a repeated
		// hour; turns never start before first.
		i := first
		if d := naive(win[0], sc.loc).Add(-2 * time.Hour).Sub(l.start); d > 0 {
			i = max(i, int(d/l.turn)-1)
		}
		for ; ; i++ {
			ws := l.start.Add(time.Duration(i) * l.turn)
			s, e := z.span(ws, ws.Add(l.turn))
			if !s.Before(to) || !s.Before(win[1]) {
				break
			}
			if !e.After(from) || !s.Before(e) || !e.After(win[0]) {
				continue
			}
			sh := Shift{User: l.Users[i%len(l.Users)], Start: maxTime(s, win[0]), End: minTime(e, win[1]), Layer: l.Name}
			sh.Start, sh.End = maxTime(sh.Start, from), minTime(sh.End, to)
			if sh.Start.Before(sh.End) {
				pieces = append(pieces, piece{i, k, sh})
			}
		}
	}
	slices.SortFunc(pieces, func(a, b piece) int {
		if a.turn != b.turn {
			return a.turn - b.turn
		}
		return a.win - b.win
	})
	out := make([]Shift, len(pieces))
	for i, p := range pieces {
		out[i] = p.sh
	}
	return out
}

func appendClipped(out []Shift, sh Shift, from, to time.Time) []Shift {
	sh.Start, sh.End = maxTime(sh.Start, from), minTime(sh.End, to)
	if sh.Start.Before(sh.End) {
		out = append(out, sh)
	}
	return out
}

// restrictionWindows lists the instants of a layer's restriction windows
// that may overlap [from, to), in order.
func (sc *Schedule) restrictionWindows(l *Layer, from, to time.Time, z *zoneTable) [][2]time.Time {
	var out [][2]time.Time
	d0 := naive(from, sc.loc)
	d0 = time.Date(d0.Year(), d0.Month(), d0.Day()-1, 0, 0, 0, 0, time.UTC)
	dEnd := naive(to, sc.loc).Add(24 * time.Hour)
	for d := d0; !d.After(dEnd); d = d.AddDate(0, 0, 1) {
		for _, r := range l.Restrictions {
			if !r.days[d.Weekday()] {
				continue
			}
			ws, we := d.Add(r.start), d.Add(r.end)
			if r.end <= r.start {
				we = we.Add(24 * time.Hour)
			}
			s, e := z.span(ws, we)
			if s.Before(e) && s.Before(to) && e.After(from) {
				out = append(out, [2]time.Time{s, e})
			}
		}
	}
	slices.SortFunc(out, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Final returns who is on call over [from, to), overrides applied, as
// shifts merged per person. It is the one computation behind "who is on
// call", "next on call", the API, the CLI, Slack, escalation and iCal.
//
// It walks the segments between consecutive boundaries (shift and override
// starts and ends, each instant once) and asks who is on call in each. A
// layer is only computed where the layers above it leave someone
// uncovered: the shifts of a layer below a full one would never be read.
func (sc *Schedule) Final(from, to time.Time) []Shift {
	from, to = from.UTC(), to.UTC()
	if !from.Before(to) {
		return nil
	}
	z := newZoneTable(sc.loc, from, to)
	// Layers by level, highest first.
	layers := make([]*Layer, len(sc.Layers))
	for i := range sc.Layers {
		layers[i] = &sc.Layers[i]
	}
	slices.SortFunc(layers, func(a, b *Layer) int { return b.Level - a.Level })
	var perLayer [][]Shift
	gaps := []interval{{from, to}}
	var spare, cover []interval // uncovered's buffers
	n := 2 + 2*len(sc.Overrides)
	for _, l := range layers {
		if len(gaps) == 0 {
			break
		}
		shifts := sc.layerShifts(l, gaps[0].from, gaps[len(gaps)-1].to, z)
		perLayer = append(perLayer, shifts)
		n += 2 * len(shifts)
		spare, cover = uncovered(spare[:0], cover, gaps, shifts)
		gaps, spare = spare, gaps
	}
	bounds := make([]time.Time, 0, n)
	bounds = append(bounds, from, to)
	for _, shifts := range perLayer {
		for _, s := range shifts {
			bounds = append(bounds, s.Start, s.End)
		}
	}
	var overrides []Override
	for _, o := range sc.Overrides {
		if o.Start.Before(to) && o.End.After(from) {
			overrides = append(overrides, o)
			bounds = append(bounds, maxTime(o.Start.UTC(), from), minTime(o.End.UTC(), to))
		}
	}
	// Overrides take effect as the walk reaches their start; those in
	// effect apply in the order they were made.
	slices.SortStableFunc(overrides, func(a, b Override) int { return a.Start.Compare(b.Start) })
	slices.SortFunc(bounds, time.Time.Compare)
	bounds = slices.CompactFunc(bounds, time.Time.Equal)

	var out []Shift
	var active []Override
	next := 0
	cursor := make([]int, len(perLayer))
	open := map[string]int{} // user -> index in out of the shift still running
	cont := map[string]int{}
	for k := 0; k+1 < len(bounds); k++ {
		at, end := bounds[k], bounds[k+1]
		for ; next < len(overrides) && !overrides[next].Start.After(at); next++ {
			o := overrides[next]
			i, _ := slices.BinarySearchFunc(active, o.ID, func(a Override, id int64) int {
				if a.ID <= id {
					return -1
				}
				return 1
			})
			active = slices.Insert(active, i, o)
		}
		active = slices.DeleteFunc(active, func(o Override) bool { return !o.End.After(at) })
		users := sc.onCallSegment(perLayer, cursor, active, at)
		clear(cont)
		for _, u := range users {
			if idx, ok := open[u.User]; ok && out[idx].End.Equal(at) && out[idx].Layer == u.Layer {
				out[idx].End = end
				cont[u.User] = idx
				continue
			}
			out = append(out, Shift{User: u.User, Start: at, End: end, Layer: u.Layer})
			cont[u.User] = len(out) - 1
		}
		open, cont = cont, open
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].User < out[j].User
	})
	return out
}

// interval is [from, to).
type interval struct{ from, to time.Time }

// uncovered appends to out the parts of gaps (in order, disjoint) that no
// shift covers; cover is scratch space.
func uncovered(out, cover, gaps []interval, shifts []Shift) ([]interval, []interval) {
	cover = cover[:0]
	for _, s := range shifts {
		cover = append(cover, interval{s.Start, s.End})
	}
	slices.SortFunc(cover, func(a, b interval) int { return a.from.Compare(b.from) })
	c := 0
	for _, g := range gaps {
		at := g.from
		for at.Before(g.to) {
			// Skip cover that ends before at.
			for c < len(cover) && !cover[c].to.After(at) {
				c++
			}
			if c == len(cover) || !cover[c].from.Before(g.to) {
				out = append(out, interval{at, g.to})
				break
			}
			if cover[c].from.After(at) {
				out = append(out, interval{at, cover[c].from})
			}
			at = maxTime(at, cover[c].to)
			// Cover starting before at may reach further.
			for c+1 < len(cover) && !cover[c+1].from.After(at) {
				c++
				at = maxTime(at, cover[c].to)
			}
		}
	}
	return out, cover
}

// onCallSegment is who is on call at instant at: the highest layer with
// someone on call, then the overrides in the order they were made.
// The walk asks for instants in order; cursor[i] is the first shift of
// layer i that ends after the previous instant, and moves on.
func (sc *Schedule) onCallSegment(perLayer [][]Shift, cursor []int, overrides []Override, at time.Time) []Shift {
	var users []Shift
	for l, shifts := range perLayer {
		// A layer's shifts are in order of start and of end, so the ones
		// holding at begin at the first that ends after it.
		i := cursor[l]
		for i < len(shifts) && !shifts[i].End.After(at) {
			i++
		}
		cursor[l] = i
		for ; i < len(shifts) && !shifts[i].Start.After(at); i++ {
			if s := shifts[i]; s.End.After(at) && !hasUser(users, s.User) {
				users = append(users, Shift{User: s.User, Layer: s.Layer})
			}
		}
		if len(users) > 0 {
			break
		}
	}
	for _, o := range overrides {
		if o.Start.After(at) || !o.End.After(at) {
			continue
		}
		ov := Shift{User: o.User, Layer: "override"}
		if o.Replaces == "" {
			users = []Shift{ov}
			continue
		}
		for i, u := range users {
			if u.User == o.Replaces {
				users = append(users[:i:i], users[i+1:]...)
				if !hasUser(users, o.User) {
					users = append(users, ov)
				}
				break
			}
		}
	}
	sort.Slice(users, func(i, j int) bool { return users[i].User < users[j].User })
	return users
}

func hasUser(ss []Shift, u string) bool {
	for _, s := range ss {
		if s.User == u {
			return true
		}
	}
	return false
}

// OnCallAt returns the people on call at t (overrides and swaps applied),
// sorted. Two people are on call only in a repeated DST hour.
func (sc *Schedule) OnCallAt(t time.Time) []string {
	var out []string
	for _, s := range sc.Final(t, t.Add(time.Nanosecond)) {
		out = append(out, s.User)
	}
	return out
}

// shiftHorizon bounds the search for the shift holding an instant.
const shiftHorizon = 35 * 24 * time.Hour

// nextHorizon bounds the search for the next on-call change.
const nextHorizon = 90 * 24 * time.Hour

// Next returns the shifts that begin at the first change of who is on call
// after t (within 90 days): who is on call next, and from when.
func (sc *Schedule) Next(t time.Time) []Shift {
	now := map[string]bool{}
	for _, u := range sc.OnCallAt(t) {
		now[u] = true
	}
	var out []Shift
	for _, s := range sc.Final(t, t.Add(nextHorizon)) {
		if !s.Start.After(t) {
			continue
		}
		if len(out) > 0 && s.Start.After(out[0].Start) {
			break
		}
		if !now[s.User] || len(out) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// ShiftAt returns user's final shift holding t, if any.
func (sc *Schedule) ShiftAt(user string, t time.Time) (Shift, bool) {
	for _, s := range sc.Final(t.Add(-shiftHorizon), t.Add(shiftHorizon)) {
		if s.User == user && !s.Start.After(t) && s.End.After(t) {
			return s, true
		}
	}
	return Shift{}, false
}
