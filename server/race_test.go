//go:build race

package server

// raceEnabled: the race detector is on, and allocation counts are its own.
const raceEnabled = true
