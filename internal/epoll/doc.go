// Package epoll is an epoll set of sockets, each with an item of the
// caller's, that another goroutine can stop: what the server's parker and
// the bench's pollers wait on (Linux only).
package epoll
