package alerting

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/client_golang/prometheus"
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
	next    time.Time
	flushed bool
}

// inflight is a notification written to the outbox and not yet delivered
// or failed for good.
type inflight struct {
	id    int64
	entry *nflogEntry
}

// dispatcher routes alerts into groups and, on each tick, turns due groups
// into notifications in the outbox, deduplicated against the notification
// log as Alertmanager does.
//
// The log holds what each integration was told by a delivered
// notification: it is updated when the outbox reports the delivery, not
// when the notification is queued. While a group's notification to an
// integration is on its way, the group's flushes skip that integration; a
// notification rejected for good leaves the log as it was, so the next
// flush builds it again.
type dispatcher struct {
	// flushMu serialises ticks; mu guards groups, nflog and inflight.
	flushMu     sync.Mutex
	mu          sync.Mutex
	route       *Route
	groups      map[string]*aggrGroup
	nflog       map[nflogKey]*nflogEntry
	inflight    map[nflogKey]inflight
	store       *Store
	silences    *Silences
	inhibitor   *Inhibitor
	intervener  *timeinterval.Intervener
	externalURL string
	// alerts returns every alert currently known, for inhibition.
	alerts func() []*Alert
	// targets returns the integrations of a receiver.
	targets func(receiver string) []string
	flushes *prometheus.CounterVec
}

// dispatcherOptions build a dispatcher.
type dispatcherOptions struct {
	Route       *Route
	Store       *Store
	Silences    *Silences
	Inhibitor   *Inhibitor
	Intervener  *timeinterval.Intervener
	ExternalURL string
	Alerts      func() []*Alert
	Targets     func(receiver string) []string
	Registerer  prometheus.Registerer
}

// Outcomes of a group's flush for one integration, the values of the
// outcome label of burnrate_alerting_group_flushes_total.
const (
	flushNotified  = "notified"
	flushUnchanged = "unchanged"
	flushMuted     = "muted"
	flushInFlight  = "in_flight"
)

// newDispatcher loads the notification log and the undelivered
// notifications, and moves state kept under group keys of older versions
// (the route's position) to the keys of the routes they belong to.
func newDispatcher(ctx context.Context, o dispatcherOptions) (*dispatcher, error) {
	d := &dispatcher{route: o.Route, groups: map[string]*aggrGroup{}, inflight: map[nflogKey]inflight{},
		store: o.Store, silences: o.Silences, inhibitor: o.Inhibitor, intervener: o.Intervener,
		externalURL: o.ExternalURL, alerts: o.Alerts, targets: o.Targets,
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "burnrate_alerting_group_flushes_total",
			Help: "Flushes of an alert group for one receiver, by outcome: notified, unchanged (no news), muted (every alert silenced, inhibited or in a mute time), in_flight (its last notification is still on its way).",
		}, []string{"outcome"}),
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(d.flushes); err != nil {
			return nil, fmt.Errorf("register dispatcher metrics: %w", err)
		}
	}
	var err error
	if d.nflog, err = o.Store.loadNflog(ctx); err != nil {
		return nil, err
	}
	if err := d.renameLegacyKeys(ctx); err != nil {
		return nil, err
	}
	pending, err := o.Store.undelivered(ctx)
	if err != nil {
		return nil, err
	}
	for _, it := range pending {
		d.inflight[nflogKey{it.n.GroupKey, it.n.Integration}] = inflight{id: it.n.ID, entry: it.entry}
	}
	return d, nil
}

// legacyKey matches group keys of older versions: "0.1:{...}".
var legacyKey = regexp.MustCompile(`^(0(?:\.[0-9]+)*):(\{.*)$`)

// renameLegacyKeys moves notification log entries (and with them Slack
// threads and undelivered notifications) kept under a group key of an older
// version to the current key of the same route, so an upgrade neither
// pages again nor leaves a message stuck. It assumes the routing tree did
// not change across the upgrade.
func (d *dispatcher) renameLegacyKeys(ctx context.Context) error {
	byID := map[string]*Route{}
	d.route.Walk(func(r *Route) { byID[r.ID] = r })
	renames := map[string]string{}
	for k := range d.nflog {
		m := legacyKey.FindStringSubmatch(k.group)
		if m == nil || byID[m[1]] == nil {
			continue
		}
		renames[k.group] = byID[m[1]].Key + ":" + m[2]
	}
	if err := d.store.renameGroupKeys(ctx, renames); err != nil {
		return err
	}
	for k, e := range d.nflog {
		if nk, ok := renames[k.group]; ok {
			delete(d.nflog, k)
			d.nflog[nflogKey{nk, k.receiver}] = e
		}
	}
	return nil
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
			if !g.flushed && a.StartsAt.Add(r.GroupWait).Before(now) && g.next.After(now) {
				// As in Alertmanager: an alert that has already waited
				// longer than group_wait (sent late, or held while the
				// process was down) is not made to wait again.
				g.next = now
			}
		}
	}
}

// lastNotified is what integration t of receiver was last told about
// group key by a delivered notification. Entries kept under the receiver's
// own name (before it had several integrations) stand for each of them.
func (d *dispatcher) lastNotified(key, receiver, t string) *nflogEntry {
	if e := d.nflog[nflogKey{key, t}]; e != nil || t == receiver {
		return e
	}
	return d.nflog[nflogKey{key, receiver}]
}

// announced reports whether an integration of receiver was told, or is
// being told, that the alert fp of group key is firing: its resolution is
// then news to send.
func (d *dispatcher) announced(key, receiver string, fp model.Fingerprint) bool {
	for _, t := range d.targets(receiver) {
		if e := d.lastNotified(key, receiver, t); e != nil && e.Firing[fp] {
			return true
		}
		if in, ok := d.inflight[nflogKey{key, t}]; ok && in.entry != nil && in.entry.Firing[fp] {
			return true
		}
	}
	return false
}

// prune forgets the group's resolved alerts whose resolution no
// integration still has to be told, and the group once it is empty.
// Alerts are only ever forgotten here, under d.mu, from the group's
// current state: a resolution that arrived since the last flush is never
// dropped unsent (Alertmanager's DeleteIfNotModified).
func (d *dispatcher) prune(g *aggrGroup, now time.Time) {
	for fp, a := range g.alerts {
		if a.Resolved(now) && !d.announced(g.key, g.route.Receiver, fp) {
			delete(g.alerts, fp)
		}
	}
	if len(g.alerts) == 0 && d.groups[g.key] == g {
		delete(d.groups, g.key)
	}
}

// settled is told by the outbox that a notification reached its end: when
// delivered, what it said becomes the group's notification log entry and
// the resolutions it told are forgotten; when failed for good, the log
// stays as it was and the next flush builds the notification again.
func (d *dispatcher) settled(it outboxItem, delivered bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := nflogKey{it.n.GroupKey, it.n.integration()}
	if in, ok := d.inflight[key]; ok && in.id <= it.n.ID {
		delete(d.inflight, key)
	}
	if !delivered {
		return
	}
	if e := it.entry; e != nil {
		if prev := d.nflog[key]; prev == nil || !e.SentAt.Before(prev.SentAt) {
			d.nflog[key] = e
		}
	}
	if g := d.groups[it.n.GroupKey]; g != nil {
		d.prune(g, describedAt(it))
	}
}

// describedAt is the instant a notification described: the flush that
// built it.
func describedAt(it outboxItem) time.Time {
	if it.entry != nil {
		return it.entry.SentAt
	}
	return it.n.CreatedAt
}

// untold returns the alerts held by groups. The resolved ones among them
// still have to be told to a receiver (prune drops the others), so the
// alert store keeps them, through a long outage and across a restart,
// until their resolution is delivered.
func (d *dispatcher) untold() map[model.Fingerprint]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[model.Fingerprint]bool{}
	for _, g := range d.groups {
		for fp := range g.alerts {
			out[fp] = true
		}
	}
	return out
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
	)
	for _, g := range due {
		d.prune(g, now)
		g.flushed = true
		g.next = now.Add(g.route.GroupInterval)
		if d.groups[g.key] != g {
			continue // pruned away
		}
		for _, n := range d.flush(g, inh, now) {
			ns = append(ns, n.n)
			entries = append(entries, n.entry)
		}
	}
	for i, n := range ns {
		// Marked before the lock is released, with no row ID yet (0): the
		// outbox may deliver a chunk and report it before the ID is
		// filled in below, and that report must clear the mark.
		d.inflight[nflogKey{n.GroupKey, n.Integration}] = inflight{entry: entries[i]}
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
			// The unwritten notifications are built again at their
			// groups' next flush.
			for _, n := range ns[written:] {
				delete(d.inflight, nflogKey{n.GroupKey, n.Integration})
			}
			return written, err
		}
		for _, n := range ns[written:end] {
			k := nflogKey{n.GroupKey, n.Integration}
			if in, ok := d.inflight[k]; ok && in.id == 0 { // not reported yet
				in.id = n.ID
				d.inflight[k] = in
			}
		}
		written = end
	}
	return len(ns), nil
}

type queued struct {
	n     *Notification
	entry *nflogEntry
}

// flush decides, for each integration of group g's receiver, whether the
// group has news for it at now, and returns the notifications with the
// log entries their delivery makes true.
func (d *dispatcher) flush(g *aggrGroup, inh *inhibitions, now time.Time) []queued {
	r := g.route
	targets := d.targets(r.Receiver)
	if d.muted(r, now) {
		d.flushes.WithLabelValues(flushMuted).Add(float64(len(targets)))
		return nil
	}
	var firing, resolved []*Alert
	mutedAny := false
	for _, a := range g.alerts {
		if a.Resolved(now) {
			resolved = append(resolved, a)
			continue
		}
		if len(d.silences.Mutes(a.Labels, now)) > 0 || len(inh.inhibitedBy(a)) > 0 {
			mutedAny = true
			continue
		}
		firing = append(firing, a)
	}
	firingFPs, resolvedFPs := fpSet(sortedFingerprints(firing)), fpSet(sortedFingerprints(resolved))
	var out []queued
	for _, t := range targets {
		if _, busy := d.inflight[nflogKey{g.key, t}]; busy {
			d.flushes.WithLabelValues(flushInFlight).Inc()
			continue
		}
		prev := d.lastNotified(g.key, r.Receiver, t)
		// Only resolved alerts that were announced as firing are worth a
		// "resolved" message.
		var told []*Alert
		for _, a := range resolved {
			if prev != nil && prev.Firing[a.Fingerprint()] {
				told = append(told, a)
			}
		}
		if len(firing) == 0 && len(told) == 0 {
			// Everything left is muted (or resolved without ever having
			// been announced): as in Alertmanager, the pipeline stops
			// here. Nothing is sent and the log keeps what the receiver
			// was last told, so the alerts are not news again when the
			// silence or inhibition lifts.
			if mutedAny {
				d.flushes.WithLabelValues(flushMuted).Inc()
			} else {
				d.flushes.WithLabelValues(flushUnchanged).Inc()
			}
			continue
		}
		if !needsUpdate(prev, firingFPs, resolvedFPs, r.RepeatInterval, now) {
			d.flushes.WithLabelValues(flushUnchanged).Inc()
			continue
		}
		d.flushes.WithLabelValues(flushNotified).Inc()
		n := d.notification(g, firing, told, now)
		n.Integration = t
		out = append(out, queued{n: n, entry: &nflogEntry{Firing: firingFPs, Resolved: resolvedFPs, SentAt: now}})
	}
	return out
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
