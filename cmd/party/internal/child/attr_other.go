//go:build !linux

package child

import "syscall"

// Attr returns nil: outside Linux a child notices that its parent died
// when its stdin closes.
func Attr() *syscall.SysProcAttr { return nil }
