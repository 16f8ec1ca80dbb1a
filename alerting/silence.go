package alerting

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// ErrSilenceNotFound is returned for an unknown silence ID.
var ErrSilenceNotFound = errors.New("silence not found")

// ErrInvalidSilence wraps every reason a silence is rejected.
var ErrInvalidSilence = errors.New("invalid silence")

// Silence states, as Alertmanager names them.
const (
	SilenceActive  = "active"
	SilencePending = "pending"
	SilenceExpired = "expired"
)

// Silence mutes matching alerts between StartsAt and EndsAt.
type Silence struct {
	ID        string
	Matchers  Matchers
	StartsAt  time.Time
	EndsAt    time.Time
	UpdatedAt time.Time
	CreatedBy string
	Comment   string
}

// State is the silence's state at now.
func (s *Silence) State(now time.Time) string {
	switch {
	case !s.EndsAt.After(now):
		return SilenceExpired
	case s.StartsAt.After(now):
		return SilencePending
	}
	return SilenceActive
}

// Validate checks a silence as Alertmanager does.
func (s *Silence) Validate() error {
	if len(s.Matchers) == 0 {
		return fmt.Errorf("%w: at least one matcher required", ErrInvalidSilence)
	}
	allEmpty := true
	for i, m := range s.Matchers {
		if !model.UTF8Validation.IsValidLabelName(m.Name) {
			return fmt.Errorf("%w: invalid label matcher %d: invalid label name %q", ErrInvalidSilence, i, m.Name)
		}
		if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
			if _, err := regexp.Compile(m.Value); err != nil {
				return fmt.Errorf("%w: invalid label matcher %d: invalid regular expression %q: %v", ErrInvalidSilence, i, m.Value, err)
			}
		}
		allEmpty = allEmpty && m.Matches("") && (m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp)
	}
	if allEmpty {
		return fmt.Errorf("%w: at least one matcher must not match the empty string", ErrInvalidSilence)
	}
	if s.StartsAt.IsZero() {
		return fmt.Errorf("%w: invalid zero start timestamp", ErrInvalidSilence)
	}
	if s.EndsAt.IsZero() {
		return fmt.Errorf("%w: invalid zero end timestamp", ErrInvalidSilence)
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("%w: start time must be before end time", ErrInvalidSilence)
	}
	if s.CreatedBy == "" {
		return fmt.Errorf("%w: creator information missing", ErrInvalidSilence)
	}
	if s.Comment == "" {
		return fmt.Errorf("%w: comment missing", ErrInvalidSilence)
	}
	return nil
}

func sameMatchers(a, b Matchers) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// Silences holds every silence in memory, backed by the store.
type Silences struct {
	mu    sync.RWMutex
	byID  map[string]*Silence
	store *Store
	now   func() time.Time
	// version changes on every write, so cached "silenced by" results can
	// tell they are stale.
	version uint64
}

func newSilences(ctx context.Context, store *Store, now func() time.Time) (*Silences, error) {
	s := &Silences{byID: map[string]*Silence{}, store: store, now: now}
	loaded, err := store.LoadSilences(ctx)
	if err != nil {
		return nil, err
	}
	for _, sil := range loaded {
		s.byID[sil.ID] = sil
	}
	return s, nil
}

func newSilenceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Set creates a silence, or updates the one with sil.ID. As in
// Alertmanager, a change an active silence cannot take in place (other
// matchers, a new start) expires it and creates a new one; the returned ID
// is the one now in effect.
func (s *Silences) Set(ctx context.Context, sil *Silence) (string, error) {
	now := s.now()
	if err := sil.Validate(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sil = &Silence{ID: sil.ID, Matchers: sil.Matchers, StartsAt: sil.StartsAt.UTC(), EndsAt: sil.EndsAt.UTC(),
		CreatedBy: sil.CreatedBy, Comment: sil.Comment, UpdatedAt: now.UTC()}
	if sil.ID != "" {
		old, ok := s.byID[sil.ID]
		if !ok {
			return "", fmt.Errorf("%w: %s", ErrSilenceNotFound, sil.ID)
		}
		if s.canUpdate(old, sil, now) {
			if err := s.put(ctx, sil); err != nil {
				return "", err
			}
			return sil.ID, nil
		}
		if old.State(now) != SilenceExpired {
			exp := *old
			s.expireAt(&exp, now)
			if err := s.put(ctx, &exp); err != nil {
				return "", err
			}
		}
	}
	if sil.StartsAt.Before(now) {
		sil.StartsAt = now.UTC()
	}
	if !sil.EndsAt.After(sil.StartsAt) {
		return "", fmt.Errorf("%w: end time can't be in the past", ErrInvalidSilence)
	}
	sil.ID = newSilenceID()
	if err := s.put(ctx, sil); err != nil {
		return "", err
	}
	return sil.ID, nil
}

func (s *Silences) canUpdate(old, sil *Silence, now time.Time) bool {
	if !sameMatchers(old.Matchers, sil.Matchers) {
		return false
	}
	switch old.State(now) {
	case SilenceActive:
		return old.StartsAt.Unix() == sil.StartsAt.Unix() && !sil.EndsAt.Before(now)
	case SilencePending:
		return !sil.StartsAt.Before(now)
	}
	return false
}

func (s *Silences) expireAt(sil *Silence, now time.Time) {
	if sil.StartsAt.After(now) {
		sil.StartsAt = now.UTC()
	}
	sil.EndsAt = now.UTC()
	sil.UpdatedAt = now.UTC()
}

func (s *Silences) put(ctx context.Context, sil *Silence) error {
	if err := s.store.PutSilence(ctx, sil); err != nil {
		return err
	}
	s.byID[sil.ID] = sil
	s.version++
	return nil
}

// Expire ends a silence now. Expiring an expired silence is not an error.
func (s *Silences) Expire(ctx context.Context, id string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrSilenceNotFound, id)
	}
	if old.State(now) == SilenceExpired {
		return nil
	}
	exp := *old
	s.expireAt(&exp, now)
	return s.put(ctx, &exp)
}

// Get returns one silence.
func (s *Silences) Get(id string) (*Silence, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sil, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrSilenceNotFound, id)
	}
	c := *sil
	return &c, nil
}

// List returns every silence, sorted as Alertmanager sorts them: active
// (next to end first), pending (next to start first), expired (latest first).
func (s *Silences) List() []*Silence {
	now := s.now()
	s.mu.RLock()
	out := make([]*Silence, 0, len(s.byID))
	for _, sil := range s.byID {
		c := *sil
		out = append(out, &c)
	}
	s.mu.RUnlock()
	order := map[string]int{SilenceActive: 1, SilencePending: 2, SilenceExpired: 3}
	sort.Slice(out, func(i, j int) bool {
		si, sj := out[i].State(now), out[j].State(now)
		if si != sj {
			return order[si] < order[sj]
		}
		switch si {
		case SilenceActive:
			return out[i].EndsAt.Before(out[j].EndsAt)
		case SilencePending:
			return out[i].StartsAt.Before(out[j].StartsAt)
		}
		return out[i].EndsAt.After(out[j].EndsAt)
	})
	return out
}

// Mutes returns the IDs of the silences active at now that match ls.
func (s *Silences) Mutes(ls model.LabelSet, now time.Time) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ids []string
	for id, sil := range s.byID {
		if sil.State(now) == SilenceActive && sil.Matchers.Matches(ls) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// gc drops silences expired for longer than retention.
func (s *Silences) gc(ctx context.Context, retention time.Duration) error {
	cut := s.now().Add(-retention)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sil := range s.byID {
		if sil.EndsAt.Before(cut) {
			delete(s.byID, id)
		}
	}
	return s.store.DeleteSilencesBefore(ctx, cut)
}
