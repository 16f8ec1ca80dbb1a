package faults

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Stressor applies the process-wide faults that act outside requests: CPU
// burn and the bounded memory leak. Run it for as long as the platform runs.
type Stressor struct {
	set *Set

	mu       sync.Mutex
	leaked   [][]byte
	burnStop context.CancelFunc
	burning  float64
	burners  atomic.Int32
}

// slice is the duty-cycle period of the CPU burn: short enough that a
// fractional core looks steady on a 15 s scrape.
const slice = 10 * time.Millisecond

// leakStep is how much the memory leak grows per tick (16 MB/s at 100 ms).
const leakStep = 1 << 20 * 16 / 10

// NewStressor returns a Stressor driven by set.
func NewStressor(set *Set) *Stressor { return &Stressor{set: set} }

// Run applies CPU burn and memory leak until ctx ends, then releases both.
func (s *Stressor) Run(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	s.set.Subscribe(func(*State) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	defer s.release()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			s.applyBurn(ctx, s.set.State().CPUBurn)
		case <-tick.C:
			s.growLeak(s.set.State().MemoryLeakMB)
		}
	}
}

// LeakedBytes is the memory currently held by the leak fault.
func (s *Stressor) LeakedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.leaked {
		n += len(b)
	}
	return n
}

func (s *Stressor) growLeak(limitMB int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := limitMB << 20
	held := 0
	for _, b := range s.leaked {
		held += len(b)
	}
	if limit == 0 {
		s.leaked = nil
		return
	}
	if held >= limit {
		return
	}
	b := make([]byte, min(leakStep, limit-held))
	// Touch every page so the memory is resident, as a real leak's would be.
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	s.leaked = append(s.leaked, b)
}

func (s *Stressor) applyBurn(ctx context.Context, cores float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cores == s.burning {
		return
	}
	if s.burnStop != nil {
		s.burnStop()
		s.burnStop = nil
	}
	s.burning = cores
	if cores <= 0 {
		return
	}
	bctx, cancel := context.WithCancel(ctx)
	s.burnStop = cancel
	whole := int(math.Ceil(cores))
	for i := range whole {
		duty := 1.0
		if i == whole-1 && cores < float64(whole) {
			duty = cores - float64(whole-1)
		}
		s.burners.Add(1)
		go func() {
			defer s.burners.Add(-1)
			burn(bctx, duty)
		}()
	}
}

// Burners is the number of goroutines burning CPU now: the cores of
// cpu.burn rounded up while it is set, 0 once a clear has taken effect.
func (s *Stressor) Burners() int { return int(s.burners.Load()) }

// burn keeps one core busy for duty of every slice.
func burn(ctx context.Context, duty float64) {
	busy := time.Duration(float64(slice) * duty)
	x := 1.0
	for ctx.Err() == nil {
		start := time.Now()
		for time.Since(start) < busy {
			for range 1000 {
				x = math.Sqrt(x + 1.5)
			}
		}
		if idle := slice - busy; idle > 0 {
			time.Sleep(idle)
		}
	}
	_ = x
}

func (s *Stressor) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.burnStop != nil {
		s.burnStop()
	}
	s.burning = 0
	s.leaked = nil
}
