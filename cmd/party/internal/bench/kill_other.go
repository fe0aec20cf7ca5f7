//go:build !unix

package bench

import "os"

// killProcess ends pid at once, as near to kill -9 as the platform has.
func killProcess(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
