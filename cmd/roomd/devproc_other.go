//go:build !unix

package main

import "syscall"

// devProcAttr: nothing to set outside unix.
func devProcAttr() *syscall.SysProcAttr { return nil }
