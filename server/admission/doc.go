// Package admission decides, publish by publish, whether a node takes a
// publish or refuses it because the node is behind: admission by measured
// delay, after CoDel (a target for the time work waits, not for the length
// of a queue) and the gradient and AIMD concurrency limits of Netflix's
// concurrency-limits and Envoy's adaptive concurrency filter.
//
// A [Controller] is fed two delays:
//
//   - the write delay: from an event's creation to its write on a socket,
//     for the writes the node made as soon as it could, not those that
//     waited for their client's socket to take more: those measure the
//     client ([Controller.ObserveWrite]);
//   - the queue delay of a room: from the read of a publish to the start of
//     its operation, which includes any wait of the connection's reader for
//     room ops to finish ([Ticket.ObserveQueue]).
//
// Every interval it takes the 90th percentile of each room's queue delays
// and of the write delays over that interval. (CoDel takes the smallest
// sample of one queue; here there is a queue per connection, and the few
// that drain fast must not hide the rest.) A room's queue delay is held to
// two fifths of the target: its readers see it and then the write delay.
// A room whose queue delay stays above that gets a publish
// limit of its own, cut by the ratio of target to delay and raised again
// while the delay is below it; a node whose write delay is above the target
// gets a node-wide limit the same way. The node-wide limit is shared between
// the rooms publishing, max-min fair (water-filling over what each asked
// for in the last interval), and a room's share between its publishers the
// same way: a room or a publisher asking for more than its share is refused
// first, and one that asks for less than its share is never refused. A
// quiet room (no more than its floor in the last interval, and no more
// than 1.5 × Config.MinRate on average over about five) keeps its floor,
// twice Config.MinRate per interval, unless the quiet rooms together ask
// for more than the node's limit: then they share it. A room over its share
// gets it in Config.Pace parts through the interval, and its publishers
// theirs, so that what it admits does not come in one burst at the
// interval's start to wait in its publishers' queues.
// When every delay has stayed below the target for a second and nothing was
// refused, the limits are lifted.
//
// The package knows nothing of sockets, frames or rooms beyond their names:
// the server calls [Controller.Admit] before it hands a publish to its room,
// and answers a refusal itself. Time comes from [Config.Now], so the tests
// drive the clock.
package admission
