package load

import (
	"math"
	"time"
)

// curve is a traffic shape: the arrival rate at t and its integral, the
// number of arrivals expected by t. Closed forms keep pacing exact and
// cheap at thousands of arrivals a second.
type curve interface {
	rate(t float64) float64 // arrivals per second at t seconds
	hits(t float64) float64 // arrivals in [0, t]
}

type constant struct{ r float64 }

func (c constant) rate(float64) float64   { return c.r }
func (c constant) hits(t float64) float64 { return c.r * t }

// ramp rises linearly from r0 to r1 over d seconds, then holds r1.
type ramp struct{ r0, r1, d float64 }

func (c ramp) rate(t float64) float64 {
	if t >= c.d {
		return c.r1
	}
	return c.r0 + (c.r1-c.r0)*t/c.d
}

func (c ramp) hits(t float64) float64 {
	if t >= c.d {
		return (c.r0+c.r1)/2*c.d + c.r1*(t-c.d)
	}
	return c.r0*t + (c.r1-c.r0)*t*t/(2*c.d)
}

// step climbs in n equal steps to r, each lasting each seconds.
type step struct {
	r    float64
	n    int
	each float64
}

func (c step) level(i int) float64 { return c.r * float64(min(i, c.n-1)+1) / float64(c.n) }

func (c step) rate(t float64) float64 { return c.level(int(t / c.each)) }

func (c step) hits(t float64) float64 {
	i := int(t / c.each)
	var h float64
	for j := 0; j < i; j++ {
		h += c.level(j) * c.each
	}
	return h + c.level(i)*(t-float64(i)*c.each)
}

// sine is a compressed day: mean r, amplitude a, period p seconds, starting
// at the mean and rising.
type sine struct{ r, a, p float64 }

func (c sine) rate(t float64) float64 { return c.r + c.a*math.Sin(2*math.Pi*t/c.p) }

func (c sine) hits(t float64) float64 {
	return c.r*t + c.a*c.p/(2*math.Pi)*(1-math.Cos(2*math.Pi*t/c.p))
}

// spike holds r, jumps to r*factor at `at` for `length` seconds, then
// returns to r.
type spike struct{ r, factor, at, length float64 }

func (c spike) rate(t float64) float64 {
	if t >= c.at && t < c.at+c.length {
		return c.r * c.factor
	}
	return c.r
}

func (c spike) hits(t float64) float64 {
	extra := c.r * (c.factor - 1)
	switch {
	case t < c.at:
		return c.r * t
	case t < c.at+c.length:
		return c.r*t + extra*(t-c.at)
	}
	return c.r*t + extra*c.length
}

// pacer implements vegeta's Pacer for a curve, bounded in count.
type pacer struct {
	c   curve
	max uint64
}

// Pace returns how long to wait before the next arrival. Arrivals follow the
// curve whatever the responses do (open model): a slow target gets more
// requests in flight, not fewer arrivals.
func (p pacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if p.max > 0 && hits >= p.max {
		return 0, true
	}
	t := elapsed.Seconds()
	want := float64(hits + 1)
	if p.c.hits(t) >= want {
		return 0, false
	}
	// Find when the (hits+1)th arrival is due: hits() is non-decreasing, so
	// bisect between now and a point where it has been reached.
	lo, hi := t, t+0.001
	for p.c.hits(hi) < want {
		hi = t + (hi-t)*2
		if hi-t > 3600 {
			return time.Second, false // rate is zero for a long time: poll
		}
	}
	for range 50 {
		mid := (lo + hi) / 2
		if p.c.hits(mid) >= want {
			hi = mid
		} else {
			lo = mid
		}
		if hi-lo < 1e-6 {
			break
		}
	}
	return time.Duration((hi - t) * float64(time.Second)), false
}

// Rate is the arrival rate at elapsed, per second.
func (p pacer) Rate(elapsed time.Duration) float64 { return p.c.rate(elapsed.Seconds()) }
