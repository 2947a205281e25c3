//go:build unix

package docparse

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// setMemoryLimit limits this process to mem bytes of private writable
// memory. RLIMIT_DATA rather than RLIMIT_AS: the Go runtime reserves far
// more address space than it uses.
func setMemoryLimit(mem int64) error {
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: uint64(mem), Max: uint64(mem)}); err != nil {
		return fmt.Errorf("memory limit: %w", err)
	}
	return nil
}

// limitCPU lets this process use d more CPU time from now on: the soft
// RLIMIT_CPU, which makes the kernel send SIGXCPU. The hard limit stays
// unlimited so that the next parse can move the soft one up again.
func limitCPU(d time.Duration) error {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("cpu usage: %w", err)
	}
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CPU, &lim); err != nil {
		return fmt.Errorf("cpu limit: %w", err)
	}
	lim.Cur = uint64((used + d + time.Second - 1) / time.Second)
	if lim.Cur > lim.Max {
		lim.Cur = lim.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &lim); err != nil {
		return fmt.Errorf("cpu limit: %w", err)
	}
	return nil
}

// exitOnCPULimit makes SIGXCPU end this process with exitCPULimit: Go
// ignores the signal unless asked for it.
func exitOnCPULimit() (stop func(), err error) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGXCPU)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			// A child process has nothing to clean up; its parent reads
			// the exit code.
			os.Exit(exitCPULimit)
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }, nil
}

// killedByCPULimit reports whether a child ended at its CPU limit: by its
// own exit code, or by the kernel's SIGXCPU or SIGKILL.
func killedByCPULimit(ee *exec.ExitError) bool {
	if ee.ExitCode() == exitCPULimit {
		return true
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGKILL || ws.Signal() == syscall.SIGXCPU)
}
