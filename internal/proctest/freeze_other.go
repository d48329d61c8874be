//go:build !unix

package proctest

import "errors"

var errNoFreeze = errors.New("proctest: freezing a process needs SIGSTOP (Unix)")

// Freeze would stop the process; this platform has no SIGSTOP.
func (n *Node) Freeze() error { return errNoFreeze }

// Thaw would let a frozen process go on; this platform has no SIGCONT.
func (n *Node) Thaw() error { return errNoFreeze }
