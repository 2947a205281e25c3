//go:build !unix

package audit

import "time"

// processCPU is not measured off Unix: the cpu metrics read 0.
func processCPU() time.Duration { return 0 }
