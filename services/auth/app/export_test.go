package app

import (
	"context"
	"io"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/server"
)

// RunCountingCompares is Run with every bcrypt comparison of the password
// hasher counted in n: how a test sees that a login checked a password
// without timing it.
func RunCountingCompares(n *atomic.Int64) func(context.Context, func(string) string, io.Writer, func(server.Addrs)) error {
	compare := func(hash, password []byte) error {
		n.Add(1)
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	return func(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error {
		return run(ctx, getenv, stdout, ready, compare)
	}
}
