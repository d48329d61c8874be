//go:build unix

package proctest

import "syscall"

// Freeze stops the process (SIGSTOP); Thaw lets it go on (SIGCONT).
func (n *Node) Freeze() error { return n.Signal(syscall.SIGSTOP) }

// Thaw lets a frozen process go on (SIGCONT).
func (n *Node) Thaw() error { return n.Signal(syscall.SIGCONT) }
