//go:build !linux

package docparse

import "syscall"

// childProcAttr has nothing to add outside Linux: the CPU limit bounds an
// orphaned child.
func childProcAttr() *syscall.SysProcAttr { return nil }
