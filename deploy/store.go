package deploy

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/burnrate/burnrate/internal/sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNotFound is returned for an unknown deploy ID.
var ErrNotFound = errors.New("not found")

// Exception is a recorded override of the policy for one version.
type Exception struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Version   string    `json:"version"`
	Kind      string    `json:"kind"`
	Reason    string    `json:"reason"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RevokedAt and RevokedBy are set when the exception was revoked
	// before it expired; it ended then.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// Deploy is one recorded deploy.
type Deploy struct {
	ID         string    `json:"id"`
	Service    string    `json:"service"`
	Version    string    `json:"version"`
	Commit     string    `json:"commit,omitempty"`
	Author     string    `json:"author,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Store keeps exceptions and deploy events in SQLite.
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

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// AddException records e and returns it with its ID.
func (s *Store) AddException(ctx context.Context, e Exception) (Exception, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO exceptions (service, version, kind, reason, author, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Service, e.Version, e.Kind, e.Reason, e.Author, ms(e.CreatedAt), ms(e.ExpiresAt))
	if err != nil {
		return e, fmt.Errorf("record exception: %w", err)
	}
	id, _ := res.LastInsertId()
	e.ID = strconv.FormatInt(id, 10)
	return e, nil
}

// ActiveExceptions returns the exceptions that have not expired at now.
func (s *Store) ActiveExceptions(ctx context.Context, now time.Time) ([]Exception, error) {
	return s.exceptions(ctx, `WHERE expires_at > ? AND revoked_at IS NULL ORDER BY id`, ms(now))
}

// Exceptions lists the exceptions of a service ("" for all), newest first.
func (s *Store) Exceptions(ctx context.Context, service string, limit int) ([]Exception, error) {
	if service == "" {
		return s.exceptions(ctx, `ORDER BY id DESC LIMIT ?`, limit)
	}
	return s.exceptions(ctx, `WHERE service = ? ORDER BY id DESC LIMIT ?`, service, limit)
}

func (s *Store) exceptions(ctx context.Context, where string, args ...any) ([]Exception, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, service, version, kind, reason, author, created_at, expires_at, revoked_at, revoked_by FROM exceptions `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list exceptions: %w", err)
	}
	defer rows.Close()
	out := []Exception{}
	for rows.Next() {
		var e Exception
		var id, created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&id, &e.Service, &e.Version, &e.Kind, &e.Reason, &e.Author, &created, &expires, &revoked, &e.RevokedBy); err != nil {
			return nil, err
		}
		e.ID, e.CreatedAt, e.ExpiresAt = strconv.FormatInt(id, 10), fromMS(created), fromMS(expires)
		if revoked.Valid {
			at := fromMS(revoked.Int64)
			e.RevokedAt = &at
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ErrEnded is returned when revoking an exception that has already
// expired or been revoked.
var ErrEnded = errors.New("exception already ended")

// RevokeException ends exception id at once, recording who ended it.
func (s *Store) RevokeException(ctx context.Context, id, by string, at time.Time) (Exception, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return Exception{}, fmt.Errorf("exception %q: %w", id, ErrNotFound)
	}
	var out Exception
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE exceptions SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?`,
			ms(at), by, n, ms(at))
		if err != nil {
			return fmt.Errorf("revoke exception: %w", err)
		}
		changed, _ := res.RowsAffected()
		var count int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM exceptions WHERE id = ?`, n).Scan(&count); err != nil {
			return err
		}
		switch {
		case count == 0:
			return fmt.Errorf("exception %q: %w", id, ErrNotFound)
		case changed == 0:
			return fmt.Errorf("exception %q: %w", id, ErrEnded)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	es, err := s.exceptions(ctx, `WHERE id = ?`, n)
	if err != nil || len(es) == 0 {
		return out, err
	}
	return es[0], nil
}

// AddDeploy records d and returns it with its ID.
func (s *Store) AddDeploy(ctx context.Context, d Deploy) (Deploy, error) {
	var finished sql.NullInt64
	if !d.FinishedAt.IsZero() {
		finished = sql.NullInt64{Int64: ms(d.FinishedAt), Valid: true}
	}
	// before_burn (burn rates read when the deploy was marked) is no longer
	// written: the watch reads the baseline from the TSDB.
	res, err := s.db.ExecContext(ctx, `INSERT INTO deploys (service, version, commit_sha, author, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?)`, d.Service, d.Version, d.Commit, d.Author, ms(d.StartedAt), finished)
	if err != nil {
		return d, fmt.Errorf("record deploy: %w", err)
	}
	id, _ := res.LastInsertId()
	d.ID = strconv.FormatInt(id, 10)
	return d, nil
}

// Deploy returns the deploy with id.
func (s *Store) Deploy(ctx context.Context, id string) (Deploy, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return Deploy{}, fmt.Errorf("deploy %q: %w", id, ErrNotFound)
	}
	ds, err := s.deploys(ctx, `WHERE id = ?`, n)
	if err != nil {
		return Deploy{}, err
	}
	if len(ds) == 0 {
		return Deploy{}, fmt.Errorf("deploy %q: %w", id, ErrNotFound)
	}
	return ds[0], nil
}

// Deploys lists deploys started at or after since, of one service ("" for
// all), newest first.
func (s *Store) Deploys(ctx context.Context, service string, since time.Time, limit int) ([]Deploy, error) {
	if service == "" {
		return s.deploys(ctx, `WHERE started_at >= ? ORDER BY started_at DESC, id DESC LIMIT ?`, ms(since), limit)
	}
	return s.deploys(ctx, `WHERE service = ? AND started_at >= ? ORDER BY started_at DESC, id DESC LIMIT ?`, service, ms(since), limit)
}

// NextDeploy returns the first deploy of d's service that started after d
// (at the same instant, recorded after it); ok is false when none did.
func (s *Store) NextDeploy(ctx context.Context, d Deploy) (next Deploy, ok bool, err error) {
	id, err := strconv.ParseInt(d.ID, 10, 64)
	if err != nil {
		return Deploy{}, false, fmt.Errorf("deploy %q: %w", d.ID, ErrNotFound)
	}
	ds, err := s.deploys(ctx, `WHERE service = ? AND (started_at > ? OR (started_at = ? AND id > ?)) ORDER BY started_at, id LIMIT 1`,
		d.Service, ms(d.StartedAt), ms(d.StartedAt), id)
	if err != nil || len(ds) == 0 {
		return Deploy{}, false, err
	}
	return ds[0], true, nil
}

func (s *Store) deploys(ctx context.Context, where string, args ...any) ([]Deploy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, service, version, commit_sha, author, started_at, finished_at FROM deploys `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	defer rows.Close()
	out := []Deploy{}
	for rows.Next() {
		var d Deploy
		var id, started int64
		var finished sql.NullInt64
		if err := rows.Scan(&id, &d.Service, &d.Version, &d.Commit, &d.Author, &started, &finished); err != nil {
			return nil, err
		}
		d.ID, d.StartedAt = strconv.FormatInt(id, 10), fromMS(started)
		if finished.Valid {
			d.FinishedAt = fromMS(finished.Int64)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
