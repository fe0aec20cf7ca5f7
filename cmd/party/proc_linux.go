package main

import "syscall"

// childProcAttr makes the kernel kill a demo child if the demo dies, so
// that no writer outlives an interrupted demo.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
