package collector_test

import (
	"runtime"
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD (the syscall package lacks it).
const rusageThread = 1

// threadCPU runs fn with its goroutine locked to one OS thread and returns
// the CPU time (user and system) that thread spent on it: what one request
// costs, unaffected by other goroutines and by a busy machine's wall clock.
func threadCPU(fn func()) (time.Duration, bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after syscall.Rusage
	if syscall.Getrusage(rusageThread, &before) != nil {
		fn()
		return 0, false
	}
	fn()
	if syscall.Getrusage(rusageThread, &after) != nil {
		return 0, false
	}
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return cpu(after) - cpu(before), true
}
