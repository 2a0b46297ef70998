package account

import (
	"context"

	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// SignupCommand is one sign-up: the client's limit key (its address), and
// the email, in its stored form, and password it gave.
type SignupCommand struct {
	ClientKey string
	Email     string
	Password  string
}

// Signup creates accounts.
type Signup struct {
	Users       Users
	Hasher      Hasher
	ClientLimit Limiter
}

// Handle creates the account of cmd. The password work is admitted first
// (a refusal costs no Redis or MongoDB call), then the client address is
// counted (each sign-up costs a bcrypt hash), then the password is hashed
// and the account stored; a taken email is EmailAlreadyExistsError.
func (s *Signup) Handle(ctx context.Context, cmd SignupCommand) (users.User, error) {
	permit, err := s.Hasher.Admit(ctx)
	if err != nil {
		return users.User{}, err
	}
	defer permit.Release()
	if err := checkLimit(ctx, s.ClientLimit, cmd.ClientKey); err != nil {
		return users.User{}, err
	}
	hash, err := permit.Hash(ctx, cmd.Password)
	if err != nil {
		return users.User{}, err
	}
	return s.Users.Create(ctx, cmd.Email, hash)
}
