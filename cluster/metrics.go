package cluster

// Metrics receives the cluster layer's measurements. Config.Metrics nil
// means none are kept. Methods must be cheap and safe for concurrent use.
type Metrics interface {
	// Forwarded counts a room op sent to its owner on another node.
	Forwarded(op string)
	// HandedOver counts rooms handed to another node (out) or installed
	// from one (in).
	HandedOver(direction string, rooms int)
	// LinkUp and LinkDown count peer links opened and lost.
	LinkUp()
	LinkDown()
}

type noMetrics struct{}

func (noMetrics) Forwarded(string)       {}
func (noMetrics) HandedOver(string, int) {}
func (noMetrics) LinkUp()                {}
func (noMetrics) LinkDown()              {}
