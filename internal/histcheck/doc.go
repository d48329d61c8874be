// Package histcheck records what clients of a roomd cluster did and saw, and
// judges the record: acknowledged messages lost, duplicates, reorders, gaps,
// histories that diverge between members or nodes, epoch changes and resets.
//
// A History is filled by a workload (Run, in load.go: publishers that send
// durable messages with idempotency keys and subscribers on every node that
// resume with since) or by hand in unit tests; Check turns it into a Report
// per room. It knows the wire protocol through internal/client and nothing of
// the server's code: it judges what clients can observe.
package histcheck
