package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/internal/sqlite"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	fixed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	migs := fstest.MapFS{
		"001_people.sql": {Data: []byte(`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);`)},
		"002_pets.sql": {Data: []byte(`CREATE TABLE pets (id INTEGER PRIMARY KEY,
			owner INTEGER NOT NULL REFERENCES people(id));`)},
		"README.md": {Data: []byte("not a migration")},
	}

	t.Run("a new database gets every migration, in WAL mode with foreign keys on", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "state.db")
		db, err := sqlite.Open(ctx, file, sqlite.Options{Migrations: migs, Now: func() time.Time { return fixed }})
		require.NoError(t, err)
		defer db.Close()

		v, err := db.Version(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, v)

		var mode string
		require.NoError(t, db.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
		require.Equal(t, "wal", mode)

		_, err = db.Exec(`INSERT INTO pets(id, owner) VALUES (1, 42)`)
		require.ErrorContains(t, err, "FOREIGN KEY")

		var applied string
		require.NoError(t, db.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&applied))
		require.Equal(t, "2026-03-01T12:00:00Z", applied)
	})

	t.Run("reopening applies only the new migrations and keeps the data", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "state.db")
		first := fstest.MapFS{"001_people.sql": migs["001_people.sql"]}
		db, err := sqlite.Open(ctx, file, sqlite.Options{Migrations: first})
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO people(id, name) VALUES (1, 'ada')`)
		require.NoError(t, err)
		require.NoError(t, db.Close())

		db, err = sqlite.Open(ctx, file, sqlite.Options{Migrations: migs})
		require.NoError(t, err)
		defer db.Close()
		v, err := db.Version(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, v)
		var name string
		require.NoError(t, db.QueryRow(`SELECT name FROM people WHERE id = 1`).Scan(&name))
		require.Equal(t, "ada", name)
	})

	t.Run("a failing migration is rolled back and named in the error", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "state.db")
		bad := fstest.MapFS{
			"001_people.sql": migs["001_people.sql"],
			"002_broken.sql": {Data: []byte(`CREATE TABLE half (id INTEGER); CREATE TABLEX oops;`)},
		}
		_, err := sqlite.Open(ctx, file, sqlite.Options{Migrations: bad})
		require.ErrorContains(t, err, "002_broken.sql")

		db, err := sqlite.Open(ctx, file, sqlite.Options{})
		require.NoError(t, err)
		defer db.Close()
		v, err := db.Version(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, v)
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'half'`).Scan(&n))
		require.Zero(t, n, "the half-applied migration must not leave a table behind")
	})

	t.Run("badly named or duplicate migrations are refused", func(t *testing.T) {
		for name, fsys := range map[string]fstest.MapFS{
			"no number": {"people.sql": {Data: []byte("SELECT 1")}},
			"duplicate": {"001_a.sql": {Data: []byte("SELECT 1")}, "001_b.sql": {Data: []byte("SELECT 1")}},
		} {
			_, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"), sqlite.Options{Migrations: fsys})
			require.ErrorIs(t, err, sqlite.ErrBadMigration, name)
		}
	})
}
