package incidents

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// calendarPast and calendarAhead bound the shifts an iCal feed lists.
const (
	calendarPast  = 7 * 24 * time.Hour
	calendarAhead = 60 * 24 * time.Hour
)

// icalShift is one shift in a feed, with the schedule it belongs to.
type icalShift struct {
	Shift
	Schedule string
}

// ICal renders shifts as an iCalendar (RFC 5545) feed. Times are UTC, so
// every calendar shows them in its own zone with DST already applied.
func ICal(name string, shifts []icalShift, stamp time.Time) []byte {
	var b bytes.Buffer
	line := func(s string) {
		// Fold at 75 octets as RFC 5545 asks.
		for len(s) > 75 {
			b.WriteString(s[:75] + "\r\n")
			s = " " + s[75:]
		}
		b.WriteString(s + "\r\n")
	}
	esc := strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)
	f := func(t time.Time) string { return t.UTC().Format("20060102T150405Z") }
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	line("PRODID:-//Burnrate//On-call//EN")
	line("CALSCALE:GREGORIAN")
	line("X-WR-CALNAME:" + esc.Replace(name))
	for _, s := range shifts {
		line("BEGIN:VEVENT")
		line(fmt.Sprintf("UID:%s-%s-%d@burnrate", s.Schedule, s.User, s.Start.Unix()))
		line("DTSTAMP:" + f(stamp))
		line("DTSTART:" + f(s.Start))
		line("DTEND:" + f(s.End))
		line("SUMMARY:" + esc.Replace(fmt.Sprintf("On call: %s (%s, %s)", s.User, s.Schedule, s.Layer)))
		line("END:VEVENT")
	}
	line("END:VCALENDAR")
	return b.Bytes()
}

func writeICal(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	_, _ = w.Write(body)
}

func (s *Service) handleScheduleCalendar(w http.ResponseWriter, r *http.Request) {
	sc, err := s.Schedule(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	now := s.now()
	var out []icalShift
	for _, sh := range sc.Final(now.Add(-calendarPast), now.Add(calendarAhead)) {
		out = append(out, icalShift{sh, sc.ID})
	}
	writeICal(w, ICal("On call: "+sc.ID, out, now))
}

func (s *Service) handleUserCalendar(w http.ResponseWriter, r *http.Request) {
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	scs, err := s.Schedules(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	now := s.now()
	var out []icalShift
	for _, sc := range scs {
		for _, sh := range sc.Final(now.Add(-calendarPast), now.Add(calendarAhead)) {
			if sh.User == u.ID {
				out = append(out, icalShift{sh, sc.ID})
			}
		}
	}
	writeICal(w, ICal("On call: "+u.Name, out, now))
}
