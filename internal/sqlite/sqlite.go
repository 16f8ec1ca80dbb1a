// Package sqlite opens the SQLite databases that hold Burnrate's durable state
// (incidents, schedules, the notification outbox, silences, deploy events).
//
// It uses modernc.org/sqlite, a pure Go driver, so the binary needs no cgo. A
// database is opened in WAL mode with foreign keys on and a busy timeout, and
// brought up to date by numbered migrations embedded in the calling package.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrBadMigration is returned when a migration file name does not follow
// NNN_description.sql or two files share a number.
var ErrBadMigration = errors.New("bad migration")

// DB is an open SQLite database.
type DB struct {
	*sql.DB
	// Path is the database file.
	Path string
	// Now stamps times written by stores built on this DB. Tests pin it.
	Now func() time.Time
}

// Options configure Open.
type Options struct {
	// Migrations holds files named NNN_description.sql at its root. They are
	// applied in order, each in its own transaction, and recorded in
	// schema_migrations so each runs once.
	Migrations fs.FS
	// MigrationsDir, when set, is the folder of Migrations that holds them
	// (packages embed `migrations/*.sql` and pass "migrations").
	MigrationsDir string
	// OneConnection serialises every use of the database on a single
	// connection: SQLite serialises writers anyway, and one connection
	// keeps "database is locked" retries out of read-check-write
	// transactions.
	OneConnection bool
	// BusyTimeout is how long a writer waits for the lock. Default 5s.
	BusyTimeout time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Open opens (creating if needed) the database at file and applies pending
// migrations.
func Open(ctx context.Context, file string, opts Options) (*DB, error) {
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Migrations != nil && opts.MigrationsDir != "" {
		sub, err := fs.Sub(opts.Migrations, opts.MigrationsDir)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: migrations: %w", file, err)
		}
		opts.Migrations = sub
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	sqlDB, err := sql.Open("sqlite", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", file, err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", file, err)
	}
	if opts.OneConnection {
		sqlDB.SetMaxOpenConns(1)
	}
	db := &DB{DB: sqlDB, Path: file, Now: opts.Now}
	if opts.Migrations != nil {
		if err := db.migrate(ctx, opts.Migrations); err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("migrate %s: %w", file, err)
		}
	}
	return db, nil
}

type migration struct {
	version int
	name    string
	file    string
}

func listMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: %s: want NNN_description.sql", ErrBadMigration, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: %s and %s share number %d", ErrBadMigration, prev, e.Name(), v)
		}
		seen[v] = e.Name()
		out = append(out, migration{version: v, name: name, file: e.Name()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	migs, err := listMigrations(fsys)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		body, err := fs.ReadFile(fsys, m.file)
		if err != nil {
			return fmt.Errorf("read %s: %w", m.file, err)
		}
		if err := db.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", m.file, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, db.Now().UTC().Format(time.RFC3339Nano))
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// Version returns the highest applied migration number (0 for none).
func (db *DB) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// InTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.inTx(ctx, fn)
}

func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
