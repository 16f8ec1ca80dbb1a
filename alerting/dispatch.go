package alerting

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/common/model"
)

// aggrGroup is an aggregation group: the alerts of one route with the same
// group labels, notified together.
type aggrGroup struct {
	key    string
	route  *Route
	labels model.LabelSet
	alerts map[model.Fingerprint]*Alert
	// next is when the group is flushed next: group_wait after creation,
	// then every group_interval.
	next time.Time
}

// dispatcher routes alerts into groups and, on each tick, turns due groups
// into notifications in the outbox, deduplicated against the notification
// log as Alertmanager does.
type dispatcher struct {
	// flushMu serialises ticks; mu guards groups and nflog.
	flushMu     sync.Mutex
	mu          sync.Mutex
	route       *Route
	groups      map[string]*aggrGroup
	nflog       map[nflogKey]*nflogEntry
	store       *Store
	silences    *Silences
	inhibitor   *Inhibitor
	intervener  *timeinterval.Intervener
	externalURL string
	// alerts returns every alert currently known, for inhibition.
	alerts func() []*Alert
}

// process inserts alerts into the groups of the routes they match.
func (d *dispatcher) process(alerts []*Alert, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range alerts {
		for _, r := range d.route.Match(a.Labels) {
			gl := r.groupLabels(a.Labels)
			key := r.groupKey(gl)
			g, ok := d.groups[key]
			if !ok {
				if a.Resolved(now) && !d.announced(key, r.Receiver, a.Fingerprint()) {
					// Alertmanager does not open a group for an alert that
					// is already over: there is nothing to tell anyone.
					// One announced as firing (it resolved while the
					// process was down) still needs its resolution sent.
					continue
				}
				g = &aggrGroup{key: key, route: r, labels: gl, alerts: map[model.Fingerprint]*Alert{}, next: now.Add(r.GroupWait)}
				d.groups[key] = g
			}
			g.alerts[a.Fingerprint()] = a
		}
	}
}

// announced reports whether the last notification of a group told its
// receiver that the alert fp was firing.
func (d *dispatcher) announced(key, receiver string, fp model.Fingerprint) bool {
	e := d.nflog[nflogKey{key, receiver}]
	return e != nil && e.Firing[fp]
}

// groupCount returns the number of aggregation groups.
func (d *dispatcher) groupCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.groups)
}

// tick flushes every group due at now and writes the resulting
// notifications to the outbox. It returns how many it wrote.
func (d *dispatcher) tick(ctx context.Context, now time.Time) (int, error) {
	// One flush at a time; d.mu is released while the outbox is written so
	// that intake is not held up by SQLite.
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	var due []*aggrGroup
	for _, g := range d.groups {
		if !g.next.After(now) {
			due = append(due, g)
		}
	}
	if len(due) == 0 {
		return 0, nil
	}
	sort.Slice(due, func(i, j int) bool { return due[i].key < due[j].key })
	inh := d.inhibitor.snapshot(d.alerts(), now)

	var (
		ns      []*Notification
		entries []*nflogEntry
		keys    []nflogKey
	)
	for _, g := range due {
		n, e := d.flush(g, inh, now)
		if n != nil {
			ns = append(ns, n)
			entries = append(entries, e)
			keys = append(keys, nflogKey{g.key, g.route.Receiver})
		}
	}
	// The outbox is written in chunks, each its own transaction, so that
	// intake (which needs SQLite's one writer too) gets in between.
	const chunk = 64
	written := 0
	for written < len(ns) {
		end := min(written+chunk, len(ns))
		d.mu.Unlock()
		err := d.store.enqueue(ctx, ns[written:end], entries[written:end], now)
		d.mu.Lock()
		if err != nil {
			// The unwritten groups flush again at their next interval and
			// their notifications are written then.
			for i := range written {
				d.nflog[keys[i]] = entries[i]
			}
			for _, g := range due {
				g.next = now.Add(g.route.GroupInterval)
			}
			return written, err
		}
		written = end
	}
	for i, k := range keys {
		d.nflog[k] = entries[i]
	}
	for _, g := range due {
		// Resolved alerts have been told (or needed no telling): drop them,
		// and the group with its last alert.
		for fp, a := range g.alerts {
			if a.Resolved(now) {
				delete(g.alerts, fp)
			}
		}
		if len(g.alerts) == 0 {
			delete(d.groups, g.key)
			continue
		}
		g.next = now.Add(g.route.GroupInterval)
	}
	return len(ns), nil
}

// flush decides whether group g has news for its receiver at now and, if
// so, returns the notification and the new notification log entry.
func (d *dispatcher) flush(g *aggrGroup, inh *inhibitions, now time.Time) (*Notification, *nflogEntry) {
	r := g.route
	if d.muted(r, now) {
		return nil, nil
	}
	var firing, resolved []*Alert
	for _, a := range g.alerts {
		if a.Resolved(now) {
			resolved = append(resolved, a)
			continue
		}
		if len(d.silences.Mutes(a.Labels, now)) > 0 || len(inh.inhibitedBy(a)) > 0 {
			continue
		}
		firing = append(firing, a)
	}
	firingFPs, resolvedFPs := fpSet(sortedFingerprints(firing)), fpSet(sortedFingerprints(resolved))
	prev := d.nflog[nflogKey{g.key, r.Receiver}]
	if !needsUpdate(prev, firingFPs, resolvedFPs, r.RepeatInterval, now) {
		return nil, nil
	}
	// Only resolved alerts that were announced as firing are worth a
	// "resolved" message.
	if prev != nil {
		kept := resolved[:0]
		for _, a := range resolved {
			if prev.Firing[a.Fingerprint()] {
				kept = append(kept, a)
			}
		}
		resolved = kept
	} else {
		resolved = nil
	}
	if len(firing) == 0 && len(resolved) == 0 {
		// Everything left is muted (or resolved without ever having been
		// announced): as in Alertmanager, the pipeline stops here. Nothing
		// is sent and the log keeps what the receiver was last told, so
		// the alerts are not news again when the silence or inhibition
		// lifts.
		return nil, nil
	}
	n := d.notification(g, firing, resolved, now)
	return n, &nflogEntry{Firing: firingFPs, Resolved: resolvedFPs, SentAt: now}
}

// muted reports whether route r sends nothing at now because of its mute
// or active time intervals.
func (d *dispatcher) muted(r *Route, now time.Time) bool {
	if len(r.MuteTimeIntervals) > 0 {
		if m, _, err := d.intervener.Mutes(r.MuteTimeIntervals, now); err == nil && m {
			return true
		}
	}
	if len(r.ActiveTimeIntervals) > 0 {
		if m, _, err := d.intervener.Mutes(r.ActiveTimeIntervals, now); err == nil && !m {
			return true
		}
	}
	return false
}

// needsUpdate is Alertmanager's DedupStage decision: notify when an alert
// started firing since the last notification, when everything resolved
// after something was announced, when an announced alert resolved, or when
// repeat_interval has passed with alerts still firing. An alert that is
// silenced or inhibited after it was announced makes no news by itself.
func needsUpdate(prev *nflogEntry, firing, resolved map[model.Fingerprint]bool, repeat time.Duration, now time.Time) bool {
	if prev == nil {
		return len(firing) > 0
	}
	for fp := range firing {
		if !prev.Firing[fp] {
			return true
		}
	}
	if len(firing) == 0 {
		return len(prev.Firing) > 0
	}
	for fp := range resolved {
		if prev.Firing[fp] && !prev.Resolved[fp] {
			return true
		}
	}
	return !now.Before(prev.SentAt.Add(repeat))
}

func (d *dispatcher) notification(g *aggrGroup, firing, resolved []*Alert, now time.Time) *Notification {
	sortAlerts(firing)
	sortAlerts(resolved)
	all := append(append([]*Alert(nil), firing...), resolved...)
	n := &Notification{
		Receiver:          g.route.Receiver,
		Status:            StatusResolved,
		GroupLabels:       toMap(g.labels),
		CommonLabels:      map[string]string{},
		CommonAnnotations: map[string]string{},
		ExternalURL:       d.externalURL,
		GroupKey:          g.key,
		CreatedAt:         now.UTC(),
	}
	if len(firing) > 0 {
		n.Status = StatusFiring
	}
	for i, a := range all {
		st := StatusFiring
		endsAt := time.Time{}
		if a.Resolved(now) {
			st = StatusResolved
			endsAt = a.EndsAt.UTC()
		}
		n.Alerts = append(n.Alerts, NotifiedAlert{
			Status: st, Labels: toMap(a.Labels), Annotations: toMap(a.Annotations),
			StartsAt: a.StartsAt.UTC(), EndsAt: endsAt, GeneratorURL: a.GeneratorURL,
			Fingerprint: a.Fingerprint().String(),
		})
		if i == 0 {
			n.CommonLabels, n.CommonAnnotations = toMap(a.Labels), toMap(a.Annotations)
			continue
		}
		intersect(n.CommonLabels, a.Labels)
		intersect(n.CommonAnnotations, a.Annotations)
	}
	return n
}

func sortAlerts(as []*Alert) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].StartsAt.Equal(as[j].StartsAt) {
			return as[i].StartsAt.Before(as[j].StartsAt)
		}
		return as[i].Fingerprint() < as[j].Fingerprint()
	})
}

func toMap(ls model.LabelSet) map[string]string {
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

func intersect(m map[string]string, ls model.LabelSet) {
	for k, v := range m {
		if string(ls[model.LabelName(k)]) != v {
			delete(m, k)
		}
	}
}
