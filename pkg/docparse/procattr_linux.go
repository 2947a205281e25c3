package docparse

import "syscall"

// childProcAttr makes the kernel kill a child when the thread that started
// it exits, so children do not outlive a crashed parent.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
