//go:build unix

package bench

import "syscall"

// killProcess sends SIGKILL to pid: kill -9.
func killProcess(pid int) error {
	return syscall.Kill(pid, syscall.SIGKILL)
}
