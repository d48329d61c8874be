//go:build !linux

package server

// canPark is false here: an idle session keeps its reader goroutine.
const canPark = false

type parker struct{ srv *Server }

func (*parker) park(parkee, int) bool { return false }

func (*parker) unpark(int) {}

func (*parker) rearm(int) bool { return false }

func (*parker) stop() {}
