//go:build linux

package bench

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SchedBatch puts every thread of this process under SCHED_BATCH, whose
// wake-ups never preempt a running thread of the normal policy: on a machine
// the bench shares with the server, a poller waking for its tick then waits
// for a free core instead of taking one from a server thread in the middle
// of a fan-out, which stretched the very writes being measured
// (docs/BENCHMARKS.md, "What we tried"). Threads started later
// inherit the policy from the thread that starts them. For the roomd bench
// command only: a test binary's in-process server would share it.
func SchedBatch() error {
	// A thread may start while the others are being changed, from one not
	// yet changed: go over them until none is left behind.
	for range 5 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy == unix.SCHED_BATCH {
				continue
			}
			err = unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_BATCH}, 0)
			if err != nil && !errors.Is(err, unix.ESRCH) { // ESRCH: it ended
				return err
			}
			changed++
		}
		if changed == 0 {
			return nil
		}
	}
	return nil
}
