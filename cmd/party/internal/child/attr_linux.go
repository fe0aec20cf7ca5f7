package child

import "syscall"

// Attr makes the kernel kill a child when its parent dies, so that no
// child outlives an interrupted demo or benchmark.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
