package collector_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// smallDisk mounts an 8 MiB tmpfs for the test, or skips it where mounting
// is not allowed (not root, no CAP_SYS_ADMIN).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	require.NoError(t, os.Mkdir(dir, 0o750))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("a full disk needs a small tmpfs, and mounting one is not allowed here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return name
		}
	}
}

// TestReadinessFollowsAFullDisk: while the disk under the TSDB is full,
// pushes fail and /-/ready's check says why; once space is free again the
// collector is ready by itself, with no push needed, and takes writes.
func TestReadinessFollowsAFullDisk(t *testing.T) {
	disk := smallDisk(t)
	c := startCollector(t, testConfig(), filepath.Join(disk, "tsdb"))
	require.NoError(t, c.Ready())

	push := func(i int) int {
		// Each request carries more than a WAL page, so it reaches the disk.
		req := &prompb.WriteRequest{}
		for s := range 50 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  labelsOf("__name__", "full_disk", "series", fmt.Sprint(s), "pad", strings.Repeat("x", 1000)),
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: time.Now().UnixMilli() + int64(i)}},
			})
		}
		code, _, _ := post(t, c.URL+"/api/v1/write", remoteWriteHeaders, remoteWriteBody(t, req))
		return code
	}
	require.Equal(t, http.StatusNoContent, push(0))

	filler := fill(t, disk)
	failed := false
	for i := 1; i <= 20 && !failed; i++ {
		failed = push(i) >= 500
	}
	require.True(t, failed, "a push onto a full disk must fail")
	err := c.Ready()
	require.Error(t, err)
	require.Contains(t, err.Error(), "storage writes failing")
	require.True(t, errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left"), err.Error())

	require.NoError(t, os.Remove(filler))
	require.Eventually(t, func() bool { return c.Ready() == nil }, 10*time.Second, 50*time.Millisecond,
		"ready again by itself once the disk has room")
	require.Equal(t, http.StatusNoContent, push(100), "and it takes writes again")
}
