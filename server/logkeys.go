package server

// Log keys, one spelling each. Tokens and secrets are never logged.
const (
	logKeyConn   = "conn"
	logKeyUser   = "user"
	logKeyRoom   = "room"
	logKeyErr    = "err"
	logKeyCode   = "code"
	logKeyReason = "reason"
	logKeyRemote = "remote"
)
