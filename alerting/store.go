package alerting

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/burnrate/burnrate/internal/sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store keeps alerting state in SQLite: alerts, silences, the notification
// log, the outbox, rule state and receiver state.
type Store struct {
	db *sqlite.DB
}

// OpenStore opens (creating and migrating) the database at file.
func OpenStore(ctx context.Context, file string) (*Store, error) {
	db, err := sqlite.Open(ctx, file, sqlite.Options{Migrations: migrationFiles, MigrationsDir: "migrations", OneConnection: true})
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on types that always marshal
	}
	return string(b)
}

// PutAlerts upserts alerts in one transaction.
func (s *Store) PutAlerts(ctx context.Context, alerts []*Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO alerts(fingerprint, labels, annotations, starts_at, ends_at, updated_at, generator_url, timeout)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(fingerprint) DO UPDATE SET labels=excluded.labels, annotations=excluded.annotations,
			starts_at=excluded.starts_at, ends_at=excluded.ends_at, updated_at=excluded.updated_at,
			generator_url=excluded.generator_url, timeout=excluded.timeout`)
		if err != nil {
			return fmt.Errorf("put alerts: %w", err)
		}
		defer st.Close()
		for _, a := range alerts {
			if _, err := st.ExecContext(ctx, a.Fingerprint().String(), mustJSON(a.Labels), mustJSON(a.Annotations),
				ms(a.StartsAt), ms(a.EndsAt), ms(a.UpdatedAt), a.GeneratorURL, a.Timeout); err != nil {
				return fmt.Errorf("put alert: %w", err)
			}
		}
		return nil
	})
}

// LoadAlerts returns every stored alert.
func (s *Store) LoadAlerts(ctx context.Context) ([]*Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT labels, annotations, starts_at, ends_at, updated_at, generator_url, timeout FROM alerts`)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	defer rows.Close()
	var out []*Alert
	for rows.Next() {
		var lbls, anns string
		var st, en, up int64
		a := &Alert{}
		if err := rows.Scan(&lbls, &anns, &st, &en, &up, &a.GeneratorURL, &a.Timeout); err != nil {
			return nil, fmt.Errorf("load alerts: %w", err)
		}
		if err := json.Unmarshal([]byte(lbls), &a.Labels); err != nil {
			return nil, fmt.Errorf("load alerts: labels: %w", err)
		}
		if err := json.Unmarshal([]byte(anns), &a.Annotations); err != nil {
			return nil, fmt.Errorf("load alerts: annotations: %w", err)
		}
		a.StartsAt, a.EndsAt, a.UpdatedAt = fromMS(st), fromMS(en), fromMS(up)
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAlerts removes alerts by fingerprint.
func (s *Store) DeleteAlerts(ctx context.Context, fps []model.Fingerprint) error {
	if len(fps) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, fp := range fps {
			if _, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE fingerprint = ?`, fp.String()); err != nil {
				return fmt.Errorf("delete alert: %w", err)
			}
		}
		return nil
	})
}

// PutSilence upserts a silence.
func (s *Store) PutSilence(ctx context.Context, sil *Silence) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO silences(id, matchers, starts_at, ends_at, updated_at, created_by, comment)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET matchers=excluded.matchers, starts_at=excluded.starts_at, ends_at=excluded.ends_at,
		updated_at=excluded.updated_at, created_by=excluded.created_by, comment=excluded.comment`,
		sil.ID, mustJSON(sil.Matchers.strings()), ms(sil.StartsAt), ms(sil.EndsAt), ms(sil.UpdatedAt), sil.CreatedBy, sil.Comment)
	if err != nil {
		return fmt.Errorf("put silence: %w", err)
	}
	return nil
}

// LoadSilences returns every stored silence.
func (s *Store) LoadSilences(ctx context.Context) ([]*Silence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, matchers, starts_at, ends_at, updated_at, created_by, comment FROM silences`)
	if err != nil {
		return nil, fmt.Errorf("load silences: %w", err)
	}
	defer rows.Close()
	var out []*Silence
	for rows.Next() {
		var raw string
		var st, en, up int64
		sil := &Silence{}
		if err := rows.Scan(&sil.ID, &raw, &st, &en, &up, &sil.CreatedBy, &sil.Comment); err != nil {
			return nil, fmt.Errorf("load silences: %w", err)
		}
		var ss []string
		if err := json.Unmarshal([]byte(raw), &ss); err != nil {
			return nil, fmt.Errorf("load silences: %w", err)
		}
		m, err := ParseMatchers(ss)
		if err != nil {
			return nil, fmt.Errorf("load silence %s: %w", sil.ID, err)
		}
		sil.Matchers = m
		sil.StartsAt, sil.EndsAt, sil.UpdatedAt = fromMS(st), fromMS(en), fromMS(up)
		out = append(out, sil)
	}
	return out, rows.Err()
}

// DeleteSilencesBefore removes silences that expired before t.
func (s *Store) DeleteSilencesBefore(ctx context.Context, t time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM silences WHERE ends_at < ?`, ms(t))
	return err
}

// nflogEntry is what a group last notified to a receiver.
type nflogEntry struct {
	Firing   map[model.Fingerprint]bool
	Resolved map[model.Fingerprint]bool
	SentAt   time.Time
}

func fpSet(fps []model.Fingerprint) map[model.Fingerprint]bool {
	m := make(map[model.Fingerprint]bool, len(fps))
	for _, fp := range fps {
		m[fp] = true
	}
	return m
}

func fpList(m map[model.Fingerprint]bool) []string {
	out := make([]string, 0, len(m))
	for fp := range m {
		out = append(out, fp.String())
	}
	return out
}

func parseFPs(raw string) (map[model.Fingerprint]bool, error) {
	var ss []string
	if err := json.Unmarshal([]byte(raw), &ss); err != nil {
		return nil, err
	}
	m := make(map[model.Fingerprint]bool, len(ss))
	for _, s := range ss {
		fp, err := model.ParseFingerprint(s)
		if err != nil {
			return nil, err
		}
		m[fp] = true
	}
	return m, nil
}

type nflogKey struct{ group, receiver string }

// LoadNflog returns the notification log.
func (s *Store) loadNflog(ctx context.Context) (map[nflogKey]*nflogEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT group_key, receiver, firing, resolved, sent_at FROM nflog`)
	if err != nil {
		return nil, fmt.Errorf("load nflog: %w", err)
	}
	defer rows.Close()
	out := map[nflogKey]*nflogEntry{}
	for rows.Next() {
		var k nflogKey
		var f, r string
		var at int64
		if err := rows.Scan(&k.group, &k.receiver, &f, &r, &at); err != nil {
			return nil, fmt.Errorf("load nflog: %w", err)
		}
		e := &nflogEntry{SentAt: fromMS(at)}
		if e.Firing, err = parseFPs(f); err != nil {
			return nil, fmt.Errorf("load nflog: %w", err)
		}
		if e.Resolved, err = parseFPs(r); err != nil {
			return nil, fmt.Errorf("load nflog: %w", err)
		}
		out[k] = e
	}
	return out, rows.Err()
}

// nflogJSON is the stored form of a notification log entry.
type nflogJSON struct {
	Firing   []string `json:"firing"`
	Resolved []string `json:"resolved"`
	SentAt   int64    `json:"sent_at"`
}

func encodeEntry(e *nflogEntry) string {
	if e == nil {
		return ""
	}
	return mustJSON(nflogJSON{Firing: fpList(e.Firing), Resolved: fpList(e.Resolved), SentAt: ms(e.SentAt)})
}

func decodeEntry(raw string) (*nflogEntry, error) {
	if raw == "" {
		return nil, nil
	}
	var j nflogJSON
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		return nil, err
	}
	e := &nflogEntry{Firing: map[model.Fingerprint]bool{}, Resolved: map[model.Fingerprint]bool{}, SentAt: fromMS(j.SentAt)}
	for _, l := range []struct {
		in  []string
		out map[model.Fingerprint]bool
	}{{j.Firing, e.Firing}, {j.Resolved, e.Resolved}} {
		for _, s := range l.in {
			fp, err := model.ParseFingerprint(s)
			if err != nil {
				return nil, err
			}
			l.out[fp] = true
		}
	}
	return e, nil
}

// enqueue writes notifications to the outbox in one transaction, each with
// the notification log entry it makes true. The log itself is written only
// when the notification is delivered (markSent): a notification that never
// arrives is not taken as sent.
func (s *Store) enqueue(ctx context.Context, ns []*Notification, entries []*nflogEntry, now time.Time) error {
	// Encode before taking the writer lock.
	payloads := make([]string, len(ns))
	logs := make([]string, len(ns))
	for i, n := range ns {
		payloads[i] = mustJSON(n)
		logs[i] = encodeEntry(entries[i])
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for i, n := range ns {
			res, err := tx.ExecContext(ctx, `INSERT INTO outbox(receiver, group_key, next_attempt_at, created_at, nflog) VALUES (?, ?, ?, ?, ?)`,
				n.integration(), n.GroupKey, ms(now), ms(now), logs[i])
			if err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			if n.ID, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_payloads(id, payload) VALUES (?, ?)`, n.ID, payloads[i]); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
		}
		return nil
	})
}

// undelivered returns the notifications written but neither delivered nor
// failed, without their payloads: the dispatcher does not notify their
// groups again while they are on their way.
func (s *Store) undelivered(ctx context.Context) ([]outboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, receiver, group_key, nflog FROM outbox WHERE state IN ('pending','sending') ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("outbox undelivered: %w", err)
	}
	defer rows.Close()
	var out []outboxItem
	for rows.Next() {
		var raw string
		it := outboxItem{n: &Notification{}}
		if err := rows.Scan(&it.n.ID, &it.n.Integration, &it.n.GroupKey, &raw); err != nil {
			return nil, fmt.Errorf("outbox undelivered: %w", err)
		}
		if it.entry, err = decodeEntry(raw); err != nil {
			return nil, fmt.Errorf("outbox %d: notification log entry: %w", it.n.ID, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// renameGroupKeys moves the state kept under old group keys (the
// notification log, receiver state such as Slack threads, undelivered
// notifications) to new ones, in one transaction.
func (s *Store) renameGroupKeys(ctx context.Context, renames map[string]string) error {
	if len(renames) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for old, nw := range renames {
			for _, q := range []string{
				`UPDATE OR REPLACE nflog SET group_key = ? WHERE group_key = ?`,
				`UPDATE OR REPLACE receiver_state SET key = ? WHERE key = ?`,
				`UPDATE outbox SET group_key = ? WHERE group_key = ?`,
			} {
				if _, err := tx.ExecContext(ctx, q, nw, old); err != nil {
					return fmt.Errorf("rename group key %s: %w", old, err)
				}
			}
		}
		return nil
	})
}

// Outbox states.
const (
	outboxPending = "pending"
	outboxSending = "sending"
	outboxSent    = "sent"
	outboxFailed  = "failed"
)

// outboxItem is a notification with its delivery bookkeeping.
type outboxItem struct {
	n        *Notification
	state    string
	attempts int
	// entry is the notification log entry delivery makes true (nil for
	// rows of older versions, whose entry was written when queued).
	entry *nflogEntry
}

// due returns, for each group key with pending work for the integration,
// its oldest undelivered notification if it is due at now: notifications of
// one group go out in order, so a resolve never overtakes its page.
func (s *Store) due(ctx context.Context, integration string, now time.Time, limit int) ([]outboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT o.id, o.group_key, o.nflog, p.payload, o.state, o.attempts FROM outbox o
		JOIN outbox_payloads p ON p.id = o.id
		WHERE o.receiver = ? AND o.state IN ('pending','sending') AND o.next_attempt_at <= ?
		AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.state IN ('pending','sending')
			AND e.receiver = o.receiver AND e.group_key = o.group_key AND e.id < o.id)
		ORDER BY o.id LIMIT ?`, integration, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox due: %w", err)
	}
	defer rows.Close()
	var out []outboxItem
	for rows.Next() {
		var id int64
		var key, raw, payload string
		it := outboxItem{n: &Notification{}}
		if err := rows.Scan(&id, &key, &raw, &payload, &it.state, &it.attempts); err != nil {
			return nil, fmt.Errorf("outbox due: %w", err)
		}
		if err := json.Unmarshal([]byte(payload), it.n); err != nil {
			return nil, fmt.Errorf("outbox %d: %w", id, err)
		}
		if it.entry, err = decodeEntry(raw); err != nil {
			return nil, fmt.Errorf("outbox %d: notification log entry: %w", id, err)
		}
		// The row's key wins over the payload's: renameGroupKeys moves rows.
		it.n.ID, it.n.GroupKey, it.n.Integration = id, key, integration
		out = append(out, it)
	}
	return out, rows.Err()
}

// markSending claims each of ids for an attempt starting now, in one
// transaction: the row is "sending" and leased until until, so that no
// other round takes it while the attempt runs. A crash from here on leaves
// it "sending"; reclaimInterrupted (at start) or the lease's end makes it
// due again, to reconcile or send again.
func (s *Store) markSending(ctx context.Context, ids []int64, until time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state='sending', attempts=attempts+1, next_attempt_at=? WHERE id = ?`, ms(until), id); err != nil {
				return fmt.Errorf("mark sending: %w", err)
			}
		}
		return nil
	})
}

// reclaimInterrupted makes every notification left "sending" by a
// process that stopped mid-attempt due at now, and returns how many there
// were. Only the one process that owns the store may call it, at start:
// nothing else can be sending them.
func (s *Store) reclaimInterrupted(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET next_attempt_at=? WHERE state='sending' AND next_attempt_at > ?`, ms(now), ms(now))
	if err != nil {
		return 0, fmt.Errorf("reclaim interrupted deliveries: %w", err)
	}
	return res.RowsAffected()
}

// markSent records deliveries and the notification log entries they make
// true, in one transaction. An entry never replaces a newer one.
func (s *Store) markSent(ctx context.Context, items []outboxItem, now time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, it := range items {
			n := it.n
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state='sent', sent_at=?, last_error='' WHERE id = ?`, ms(now), n.ID); err != nil {
				return fmt.Errorf("mark sent: %w", err)
			}
			e := it.entry
			if e == nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO nflog(group_key, receiver, firing, resolved, sent_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT(group_key, receiver) DO UPDATE SET firing=excluded.firing, resolved=excluded.resolved, sent_at=excluded.sent_at
				WHERE excluded.sent_at >= nflog.sent_at`,
				n.GroupKey, n.integration(), mustJSON(fpList(e.Firing)), mustJSON(fpList(e.Resolved)), ms(e.SentAt)); err != nil {
				return fmt.Errorf("record nflog: %w", err)
			}
		}
		return nil
	})
}

// release puts notifications marked sending back, untried, for an attempt
// at or after at.
func (s *Store) release(ctx context.Context, ids []int64, at time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state='pending', attempts=max(attempts-1, 0), next_attempt_at=? WHERE id = ?`, ms(at), id); err != nil {
				return fmt.Errorf("release: %w", err)
			}
		}
		return nil
	})
}

func (s *Store) markFailed(ctx context.Context, id int64, cause error) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET state='failed', last_error=? WHERE id = ?`, cause.Error(), id)
	return err
}

func (s *Store) retryAt(ctx context.Context, id int64, at time.Time, cause error) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET state='pending', next_attempt_at=?, last_error=? WHERE id = ?`, ms(at), cause.Error(), id)
	return err
}

// OutboxCounts returns the number of notifications in each state.
func (s *Store) OutboxCounts(ctx context.Context) (map[string]int, error) {
	return s.countByState(ctx, `SELECT state, COUNT(*) FROM outbox GROUP BY state`)
}

// undeliveredCounts counts the pending and sending notifications, through
// the partial index of undelivered rows.
func (s *Store) undeliveredCounts(ctx context.Context) (map[string]int, error) {
	return s.countByState(ctx, `SELECT state, COUNT(*) FROM outbox WHERE state IN ('pending', 'sending') GROUP BY state`)
}

// countByState runs a query answering (state, count) rows.
func (s *Store) countByState(ctx context.Context, query string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("outbox counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// deleteSentBefore trims delivered notifications older than t.
func (s *Store) deleteSentBefore(ctx context.Context, t time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox_payloads WHERE id IN (SELECT id FROM outbox WHERE state='sent' AND sent_at < ?)`, ms(t)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE state='sent' AND sent_at < ?`, ms(t))
		return err
	})
}

// ReceiverState is durable key/value state for one receiver (for example
// the Slack message that belongs to a group).
type ReceiverState interface {
	Get(ctx context.Context, key string) (string, bool, error)
	Put(ctx context.Context, key, value string) error
}

type receiverState struct {
	s        *Store
	receiver string
}

// ReceiverState returns the state store of the named receiver.
func (s *Store) ReceiverState(receiver string) ReceiverState {
	return receiverState{s: s, receiver: receiver}
}

func (r receiverState) Get(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := r.s.db.QueryRowContext(ctx, `SELECT value FROM receiver_state WHERE receiver=? AND key=?`, r.receiver, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("receiver state: %w", err)
	}
	return v, true, nil
}

func (r receiverState) Put(ctx context.Context, key, value string) error {
	_, err := r.s.db.ExecContext(ctx, `INSERT INTO receiver_state(receiver, key, value) VALUES (?, ?, ?)
		ON CONFLICT(receiver, key) DO UPDATE SET value=excluded.value`, r.receiver, key, value)
	if err != nil {
		return fmt.Errorf("receiver state: %w", err)
	}
	return nil
}
