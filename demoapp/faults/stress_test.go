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

	_, err := set.Set(ctx, "cpu.burn", "1.5", "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Burners() == 2 }, 5*time.Second, 10*time.Millisecond,
		"1.5 cores: one burner at full duty, one at half")
	// The burners spend CPU: at one and a half cores, 300 ms of it comes in
	// 200 ms on an idle machine and later on a busy one, never on an idle
	// process.
	before := cpuTime()
	require.Eventually(t, func() bool { return cpuTime()-before > 300*time.Millisecond }, 30*time.Second, 20*time.Millisecond)

	_, err = set.Clear(ctx, "cpu.burn", "test")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Burners() == 0 }, 5*time.Second, 10*time.Millisecond,
		"cleared, every burner has stopped")
}
