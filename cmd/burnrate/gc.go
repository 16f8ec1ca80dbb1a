package main

import (
	"runtime/debug"
)

// upGCPercent and upMemoryLimit are the garbage collector's settings for
// `burnrate up` when GOGC and GOMEMLIMIT leave them to it. Chosen by
// measurement (bench/README.md, "Demo platform on burnrate up"): the demo
// platform allocates per request on every hop, and at GOGC=100 the
// collector took about a tenth of the process's CPU; GOGC=400 cut CPU per
// request by about 11% at equal rate for a heap a few times larger (the
// live heap of `up` is tens of megabytes). The memory limit is a backstop
// that makes the collector work harder before the heap reaches 2 GiB, above
// what the memory.leak fault (at most 1 GiB) can add.
const (
	upGCPercent   = 400
	upMemoryLimit = 2 << 30
)

// upGC is what `burnrate up` sets: the GC percent and memory limit, or -1
// for a setting the environment makes (GOGC, GOMEMLIMIT), which wins.
func upGC(getenv func(string) string) (percent int, limit int64) {
	percent, limit = upGCPercent, upMemoryLimit
	if getenv("GOGC") != "" {
		percent = -1
	}
	if getenv("GOMEMLIMIT") != "" {
		limit = -1
	}
	return percent, limit
}

// tuneGCForUp applies upGC.
func tuneGCForUp(getenv func(string) string) {
	percent, limit := upGC(getenv)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
}
