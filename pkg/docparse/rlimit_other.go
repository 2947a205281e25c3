//go:build !unix

package docparse

import (
	"os/exec"
	"time"
)

// Where rlimits do not exist, the Pool's kill at the deadline is the only
// bound.

func setMemoryLimit(int64) error               { return nil }
func limitCPU(time.Duration) error             { return nil }
func exitOnCPULimit() (stop func(), err error) { return func() {}, nil }
func killedByCPULimit(ee *exec.ExitError) bool { return ee.ExitCode() == exitCPULimit }
