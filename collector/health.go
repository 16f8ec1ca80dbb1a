package collector

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// storageHealth remembers whether the TSDB's last commit failed (a WAL write
// refused: a full or read-only disk), so that /-/ready says so instead of
// sending senders to a collector that loses what they push. Once the
// failure is there, readiness checks probe the disk, at most once per
// probeEvery, and a probe or a commit that succeeds makes it ready again by
// itself: a load balancer that stopped sending would otherwise never see it
// recover.
type storageHealth struct {
	dir        string
	probeEvery time.Duration

	mu        sync.Mutex
	err       error // the last commit's failure; nil when it succeeded
	since     time.Time
	lastProbe time.Time
}

// record notes a commit's outcome.
func (h *storageHealth) record(err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.err = nil
		return
	}
	if h.err == nil {
		h.since = now
	}
	h.err = err
}

// check returns why storage is not writable, nil when it is.
func (h *storageHealth) check(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	if now.Sub(h.lastProbe) >= h.probeEvery {
		h.lastProbe = now
		if err := probeWrite(h.dir); err == nil {
			h.err = nil
			return nil
		}
	}
	return fmt.Errorf("storage writes failing since %s: %w", h.since.UTC().Format(time.RFC3339), h.err)
}

// probeSize is what a probe writes: a WAL page.
const probeSize = 32 << 10

// probeWrite writes, syncs and removes a file of probeSize in dir, the
// TSDB's directory, on the file system its WAL is on.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.Write(make([]byte, probeSize))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(name)
	return errors.Join(werr, serr, cerr, rerr)
}
