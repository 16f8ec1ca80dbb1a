//go:build !linux

package collector_test

import "time"

// threadCPU runs fn; without a per-thread CPU clock it reports no time.
func threadCPU(fn func()) (time.Duration, bool) {
	fn()
	return 0, false
}
