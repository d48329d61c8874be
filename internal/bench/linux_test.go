//go:build linux

package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
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
	stamp := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)))
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
		{"truncated", stamp[:len(stamp)-4], false},
		{"zero length", make([]byte, 32), false},
	} {
		got, ok := arrivalStamp(tc.oob)
		if ok != tc.ok || ok && got != ts.Nano() {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, ts.Nano(), tc.ok)
		}
	}
}

// cmsg builds one control message, padded as the platform aligns them.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.SetLen(unix.CmsgLen(len(data)))
	h.Level, h.Type = level, typ
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// The floor scenario writes every message to every subscriber of its room
// itself, with no server: every delivery arrives once and in order, its
// latency at arrival, and the writer's CPU is counted per write.
func TestFloor(t *testing.T) {
	c := quick("", "floor")
	c.URLs = nil
	c.Rooms, c.Subs, c.Rate = 2, 15, 200
	res := run(t, c)
	checkClean(t, res)
	if res.Readers != 30 || res.Connections != 30 {
		t.Errorf("readers %d, connections %d; want 30", res.Readers, res.Connections)
	}
	// Each room's messages go to its 15 subscribers, and only to them.
	if res.Expected != 15*res.Published || res.Foreign != 0 {
		t.Errorf("expected %d for %d published (want ×15), foreign %d", res.Expected, res.Published, res.Foreign)
	}
	checkLatencyAt(t, res, true)
	f := res.Floor
	switch {
	case f == nil:
		t.Fatal("no floor figures")
	case f.Writes != res.Expected:
		t.Errorf("writes %d; want one per expected delivery, %d", f.Writes, res.Expected)
	case f.WriterCPUSeconds <= 0 || f.CPUMicrosPerWrite <= 0 || f.WouldBlock != 0:
		t.Errorf("floor %+v", f)
	case f.FrameBytes <= c.Size:
		t.Errorf("frame of %d B for a %d B payload", f.FrameBytes, c.Size)
	}
	if res.Server != nil {
		t.Errorf("server figures without a server: %+v", res.Server)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"floor (no server", "writer CPU", "µs per write"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// Floor measures no server: the flags that would point at one are refused.
func TestFloorRefusesServerFlags(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.PID = os.Getpid() },
		func(c *Config) { c.NonReaders = 10 },
	} {
		c := quick("", "floor")
		edit(&c)
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "floor runs no server") {
			t.Errorf("err %v; want floor runs no server", err)
		}
	}
}
