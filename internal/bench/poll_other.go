//go:build !linux

package bench

import "errors"

// canPoll is false here: every connection is read by a goroutine of its own.
const canPoll = false

type poller struct{}

func newPoller(*runner) (*poller, error) { return nil, errors.New("bench: pollers need Linux") }

func (*poller) add(source) error { return errors.New("bench: pollers need Linux") }

func (*poller) stop() {}

func (*wsConn) rawPong([]byte) error { return errors.New("bench: pollers need Linux") }

func closeRaw(int) {}
