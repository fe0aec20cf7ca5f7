//go:build !linux

package main

import "syscall"

// childProcAttr returns nil: outside Linux a demo child notices that the
// demo died when its stdin closes.
func childProcAttr() *syscall.SysProcAttr { return nil }
