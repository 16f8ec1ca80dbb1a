package faults_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/faults"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUBurnUsesCPUUntilCleared(t *testing.T) {
	set := faults.New()
	s := faults.NewStressor(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	_, err := set.Set(ctx, "cpu.burn", "1", "test")
	require.NoError(t, err)
	before := cpuTime()
	time.Sleep(500 * time.Millisecond)
	burnt := cpuTime() - before
	// One core for half a second is 500ms of CPU on an idle machine; a
	// shared one gives less, but far more than an idle process uses.
	require.Greater(t, burnt, 50*time.Millisecond)

	_, err = set.Clear(ctx, "cpu.burn", "test")
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // the burners see the cancellation
	before = cpuTime()
	time.Sleep(300 * time.Millisecond)
	require.Less(t, cpuTime()-before, 30*time.Millisecond, "cleared, the process is idle again")
}
