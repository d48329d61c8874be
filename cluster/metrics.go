package cluster

import "time"

// Metrics receives the cluster layer's measurements. Config.Metrics nil
// means none are kept. Methods must be cheap and safe for concurrent use.
type Metrics interface {
	// Forwarded counts a room op sent to its owner on another node.
	Forwarded(op string)
	// Committed observes how long a proposal this node made took to be
	// committed and applied.
	Committed(d time.Duration)
	// LeaderChanged counts a group this node started or stopped leading.
	LeaderChanged()
	// LinkUp and LinkDown count peer links opened and lost.
	LinkUp()
	LinkDown()
	// LinkOversized counts a peer link cut because the peer sent a message
	// over Config.LinkMaxMessage.
	LinkOversized()
	// Groups reports this node's replicas: groups led, followed and asleep
	// (quiesced), and the most log entries a replica of a group it leads is
	// behind. Called every refresh (250 ms).
	Groups(led, followed, asleep int, lag uint64)
}

type noMetrics struct{}

func (noMetrics) Forwarded(string)             {}
func (noMetrics) Committed(time.Duration)      {}
func (noMetrics) LeaderChanged()               {}
func (noMetrics) LinkUp()                      {}
func (noMetrics) LinkDown()                    {}
func (noMetrics) LinkOversized()               {}
func (noMetrics) Groups(int, int, int, uint64) {}
