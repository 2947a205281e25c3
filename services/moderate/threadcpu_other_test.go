//go:build !linux

package moderate

import "time"

// threadCPUTime is 0: only the Linux build reads a thread's CPU time.
func threadCPUTime() time.Duration { return 0 }
