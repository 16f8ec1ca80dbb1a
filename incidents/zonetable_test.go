package incidents

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The zone table places every wall-clock time exactly where the zone
// itself does, through skipped and repeated hours, half-hour shifts
// (Lord Howe) and zones without DST, and falls back outside its range.
func TestZoneTablePlacesWallTimesAsTheZoneDoes(t *testing.T) {
	for _, name := range []string{"America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"} {
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		to := from.AddDate(1, 0, 0)
		z := newZoneTable(loc, from, to)
		for w := from.AddDate(0, 0, -20); w.Before(to.AddDate(0, 0, 20)); w = w.Add(15 * time.Minute) {
			f1, l1 := occurrences(w, loc)
			f2, l2 := z.occurrences(w)
			require.True(t, f1.Equal(f2) && l1.Equal(l2), "%s: wall time %s: zone says %s..%s, table %s..%s", name, w.Format("2006-01-02 15:04"), f1, l1, f2, l2)
		}
	}
}
