// Package linger closes server connections the way nginx's lingering_close
// does. A server that answers before it has read the whole request (a body
// over the limit) and then closes the socket makes the kernel reset the
// connection when more of the body arrives; the reset can destroy the answer
// before a client that writes its whole body first ever reads it. Here a
// close first shuts down the sending side (the answer is complete and
// delivered), then reads and discards what the client still sends, for a
// bounded time, and only then closes.
package linger

import (
	"net"
	"sync"
	"time"
)

// Defaults of Listen: how long a closing connection is drained at most, and
// how long it may stay silent before the drain gives up.
const (
	DefaultTime    = 30 * time.Second
	DefaultTimeout = 5 * time.Second
)

// Listen returns ln whose connections close lingeringly: Close shuts down
// the sending side and returns at once, while a goroutine discards the
// client's remaining data until it closes its side, stays silent for
// timeout, or total has passed; then the connection is closed.
func Listen(ln net.Listener, total, timeout time.Duration) net.Listener {
	return &listener{Listener: ln, total: total, timeout: timeout}
}

type listener struct {
	net.Listener
	total, timeout time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return &conn{TCPConn: tc, total: l.total, timeout: l.timeout}, nil
}

// conn is a TCP connection whose Close lingers.
type conn struct {
	*net.TCPConn
	total, timeout time.Duration
	once           sync.Once
}

// Close shuts down writing and drains the connection in the background.
func (c *conn) Close() error {
	c.once.Do(func() {
		// An error here (already shut down, as net/http does before
		// closing; or a broken connection) ends the drain at its first read.
		_ = c.CloseWrite()
		go c.drain()
	})
	return nil
}

func (c *conn) drain() {
	defer func() { _ = c.TCPConn.Close() }()
	end := time.Now().Add(c.total)
	buf := make([]byte, 32<<10)
	for {
		deadline := time.Now().Add(c.timeout)
		if deadline.After(end) {
			deadline = end
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return
		}
		if _, err := c.Read(buf); err != nil {
			return // io.EOF: the client closed its side; or a timeout
		}
	}
}
