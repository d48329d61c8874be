//go:build linux

package bench

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSchedBatch runs SchedBatch in a child process (it changes the whole
// process) and checks there that every thread, those started after it
// included, runs under SCHED_BATCH.
func TestSchedBatch(t *testing.T) {
	if os.Getenv("ROOMD_TEST_SCHED_BATCH_CHILD") == "1" {
		schedBatchChild(t)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestSchedBatch$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ROOMD_TEST_SCHED_BATCH_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func schedBatchChild(t *testing.T) {
	if err := SchedBatch(); err != nil {
		t.Fatal(err)
	}
	// Threads started afterwards: goroutines locked to threads of their own.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			<-release
		}()
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // ended meanwhile
		}
		if a.Policy != unix.SCHED_BATCH {
			t.Errorf("thread %d has policy %d, want SCHED_BATCH (%d)", tid, a.Policy, unix.SCHED_BATCH)
		}
	}
	close(release)
	wg.Wait()
}

// arrivalStamp finds the timestamp among control messages and refuses
// malformed ones without reading past them.
func TestArrivalStamp(t *testing.T) {
	ts := unix.Timespec{Sec: 1_795_000_000, Nsec: 123_456_789}
	stamp := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, (*[16]byte)(unsafe.Pointer(&ts))[:])
	other := cmsg(unix.SOL_IP, unix.IP_TOS, []byte{1, 0, 0, 0})
	for _, tc := range []struct {
		name string
		oob  []byte
		ok   bool
	}{
		{"stamp", stamp, true},
		{"after another", append(append([]byte{}, other...), stamp...), true},
		{"none", other, false},
		{"empty", nil, false},
		{"truncated", stamp[:20], false},
		{"zero length", make([]byte, 32), false},
	} {
		got, ok := arrivalStamp(tc.oob)
		if ok != tc.ok || ok && got != ts.Nano() {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, ts.Nano(), tc.ok)
		}
	}
}

// cmsg builds one control message, padded to 8 bytes.
func cmsg(level, typ int32, data []byte) []byte {
	const hdr = int(unsafe.Sizeof(unix.Cmsghdr{}))
	b := make([]byte, (hdr+len(data)+7)&^7)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Len, h.Level, h.Type = uint64(hdr+len(data)), level, typ
	copy(b[hdr:], data)
	return b
}
