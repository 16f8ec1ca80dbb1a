package faults

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/burnrate/burnrate/internal/sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// tsFormat has a fixed width so that stored times sort as text.
const tsFormat = "2006-01-02T15:04:05.000000000Z"

func fsSub() (fs.FS, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("fault events: %w", err)
	}
	return sub, nil
}

// Event kinds.
const (
	EventSet     = "fault_set"
	EventCleared = "fault_cleared"
)

// Event is one recorded fault change.
type Event struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Flag   string    `json:"flag"`
	Value  string    `json:"value"`
	Source string    `json:"source"`
}

// Set is the live set of fault flags of one process.
type Set struct {
	logger *slog.Logger
	db     *sqlite.DB // nil: changes are not recorded
	now    func() time.Time

	mu     sync.Mutex
	values map[string]Value
	state  atomic.Pointer[State]
	subs   []func(*State)
	// notifyMu orders calls to subscribers: each notification reads the
	// newest State under it, so the last call any subscriber sees is the
	// current State even when changes race.
	notifyMu sync.Mutex
}

// Open opens (creating it if needed) the event database at file and returns
// a Set with no fault active. An empty file keeps events only in the log,
// which is what unit tests of the components want.
func Open(ctx context.Context, file string, logger *slog.Logger, now func() time.Time) (*Set, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{logger: logger, now: now, values: map[string]Value{}}
	s.state.Store(&State{CacheMode: CacheOn})
	if file != "" {
		sub, err := fsSub()
		if err != nil {
			return nil, err
		}
		db, err := sqlite.Open(ctx, file, sqlite.Options{Migrations: sub, Now: now})
		if err != nil {
			return nil, fmt.Errorf("fault events: %w", err)
		}
		s.db = db
	}
	return s, nil
}

// New returns a Set that records nothing, for tests and benchmarks.
func New() *Set {
	s, _ := Open(context.Background(), "", nil, nil)
	return s
}

// Close closes the event database.
func (s *Set) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// State is the current set of active faults. Callers must not modify it.
func (s *Set) State() *State { return s.state.Load() }

// Subscribe calls fn with every new State (and once now). Components that
// act on faults outside requests (CPU burn, memory leak, rate limits) use it.
func (s *Set) Subscribe(fn func(*State)) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
	fn(s.state.Load())
}

// notify calls every subscriber with the newest State.
func (s *Set) notify() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	st := s.state.Load()
	for _, fn := range subs {
		fn(st)
	}
}

// Values lists the active flags, in catalogue order.
func (s *Set) Values() []Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Value, 0, len(s.values))
	for _, spec := range Catalog {
		if v, ok := s.values[spec.Name]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Set activates flag name with raw value and records the change. source says
// who asked (api, cli, gameday, ui).
func (s *Set) Set(ctx context.Context, name, raw, source string) (Value, error) {
	spec, ok := lookup(name)
	if !ok {
		return Value{}, fmt.Errorf("%w: %q", ErrUnknownFlag, name)
	}
	// Parse first against a scratch State so a bad value changes nothing.
	canon, err := apply(&State{}, spec, raw)
	if err != nil {
		return Value{}, err
	}
	s.mu.Lock()
	v := Value{Name: name, Value: canon, SetAt: s.now().UTC()}
	s.values[name] = v
	s.publishLocked()
	s.mu.Unlock()
	s.notify()
	s.logger.Info("fault set", "flag", name, "value", canon, "source", source)
	return v, s.record(ctx, Event{At: v.SetAt, Kind: EventSet, Flag: name, Value: canon, Source: source})
}

// Clear deactivates flag name (every flag when name is empty) and records
// the change. Clearing a flag that is not set is not an error and records
// nothing.
func (s *Set) Clear(ctx context.Context, name, source string) ([]string, error) {
	if name != "" {
		if _, ok := lookup(name); !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownFlag, name)
		}
	}
	s.mu.Lock()
	var cleared []string
	for n := range s.values {
		if name == "" || n == name {
			cleared = append(cleared, n)
			delete(s.values, n)
		}
	}
	sort.Strings(cleared)
	s.publishLocked()
	s.mu.Unlock()
	if len(cleared) == 0 {
		return nil, nil
	}
	s.notify()
	at := s.now().UTC()
	for _, n := range cleared {
		s.logger.Info("fault cleared", "flag", n, "source", source)
		if err := s.record(ctx, Event{At: at, Kind: EventCleared, Flag: n, Value: "", Source: source}); err != nil {
			return cleared, err
		}
	}
	return cleared, nil
}

// publishLocked rebuilds the State from the active values.
func (s *Set) publishLocked() {
	st := &State{CacheMode: CacheOn}
	for _, spec := range Catalog {
		if v, ok := s.values[spec.Name]; ok {
			// Values were validated when set; they parse again.
			_, _ = apply(st, spec, v.Value)
		}
	}
	s.state.Store(st)
}

func (s *Set) record(ctx context.Context, e Event) error {
	if s.db == nil {
		return nil
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO demo_events(at, kind, flag, value, source) VALUES (?, ?, ?, ?, ?)`,
		e.At.UTC().Format(tsFormat), e.Kind, e.Flag, e.Value, e.Source)
	if err != nil {
		return fmt.Errorf("record fault event: %w", err)
	}
	return nil
}

// Events returns recorded events at or after since, oldest first, at most
// limit of them.
func (s *Set) Events(ctx context.Context, since time.Time, limit int) ([]Event, error) {
	out := []Event{}
	if s.db == nil {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, at, kind, flag, value, source FROM demo_events WHERE at >= ? ORDER BY id LIMIT ?`,
		since.UTC().Format(tsFormat), limit)
	if err != nil {
		return nil, fmt.Errorf("read fault events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Flag, &e.Value, &e.Source); err != nil {
			return nil, fmt.Errorf("read fault events: %w", err)
		}
		e.At, err = time.Parse(tsFormat, at)
		if err != nil {
			return nil, fmt.Errorf("read fault events: bad time %q: %w", at, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
