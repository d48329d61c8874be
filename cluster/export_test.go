package cluster

// PauseRefresh freezes (or thaws) a node's view of the membership, so that
// a test can hold two nodes in disagreement about owners.
func PauseRefresh(c *Cluster, paused bool) {
	c.mu.Lock()
	c.paused = paused
	c.mu.Unlock()
	if !paused {
		c.requestRefresh()
	}
}
