// The mix: the kinds of request and the order in which a run sends them.

package load

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Kind is one kind of request of the mix.
type Kind string

// The kinds of request, in the order reports list them.
const (
	List   Kind = "list"
	Get    Kind = "get"
	Create Kind = "create"
	Delete Kind = "delete"
	Login  Kind = "login"
	Logout Kind = "logout"
)

// Kinds lists every kind.
var Kinds = []Kind{List, Get, Create, Delete, Login, Logout}

// Writes are the kinds that need Redis (the denylist check, the login rate limits, the logout itself):
// while Redis is away they answer 503, and the public reads do not.
var Writes = []Kind{Create, Delete, Login, Logout}

func (d *driver) movie(name string) []byte {
	b, _ := json.Marshal(map[string]any{
		"name":   fmt.Sprintf("load %s %s", d.run, name),
		"casts":  []string{"Ada Lovelace", "Alan Turing"},
		"genres": []string{"Drama"},
	})
	return b
}

// target builds the n-th request of the mix. Each second of requests starts with a login; the middle
// one is a logout when one is due (and its token carried by nothing in flight); of the others, in every
// twenty: 8 lists, 6 reads by id, 3 creates, 3 deletes (a create when nothing is left to delete).
func (d *driver) target(t *vegeta.Target) error {
	n := d.seq.Add(1)
	t.Header = http.Header{}
	t.Header.Set("X-Request-ID", fmt.Sprintf("load-%s-%d", d.run, n))
	slot := int(n % uint64(d.cfg.Rate))
	if slot == 0 {
		t.Method, t.URL, t.Body = http.MethodPost, d.cfg.BaseURL+"/api/auth/login", d.credentials()
		t.Header.Set("Content-Type", "application/json")
		return nil
	}
	if slot == d.cfg.Rate/2 {
		if tok := d.takeRetired(); tok != "" {
			t.Method, t.URL = http.MethodPost, d.cfg.BaseURL+"/api/auth/logout"
			t.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}
	}
	switch m := n % 20; {
	case m < 8:
		t.Method, t.URL = http.MethodGet, d.cfg.BaseURL+"/api/movies"
	case m < 14:
		t.Method, t.URL = http.MethodGet, d.cfg.BaseURL+"/api/movies/"+d.seeds[int(n)%len(d.seeds)]
	default:
		t.Header.Set(authMarker, "1")
		if id := d.takeDeletable(m >= 17); id != "" {
			t.Method, t.URL = http.MethodDelete, d.cfg.BaseURL+"/api/movies/"+id
			return nil
		}
		t.Method, t.URL, t.Body = http.MethodPost, d.cfg.BaseURL+"/api/movies", d.movie(strconv.FormatUint(n, 10))
		t.Header.Set("Content-Type", "application/json")
	}
	return nil
}

func (d *driver) credentials() []byte {
	b, _ := json.Marshal(map[string]string{"email": d.cfg.Email, "password": d.cfg.Password})
	return b
}

// takeRetired returns a replaced token that no request in flight carries, to log out; "" if none.
func (d *driver) takeRetired() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, tok := range d.retired {
		if d.inFlight[tok] == 0 {
			d.retired = slices.Delete(d.retired, i, i+1)
			return tok
		}
	}
	return ""
}

func (d *driver) takeDeletable(want bool) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !want || len(d.deletable) == 0 {
		return ""
	}
	id := d.deletable[0]
	d.deletable = d.deletable[1:]
	return id
}

// loggedIn makes tok the token of the writes; every LogoutEvery the one it replaces waits for its logout.
func (d *driver) loggedIn(tok string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.lastRetired) >= d.cfg.LogoutEvery && d.token != tok {
		d.retired = append(d.retired, d.token)
		d.lastRetired = time.Now()
	}
	d.token = tok
}

func kindOf(method, path string) Kind {
	switch {
	case path == "/api/auth/login":
		return Login
	case path == "/api/auth/logout":
		return Logout
	case path == "/api/movies" && method == http.MethodGet:
		return List
	case path == "/api/movies":
		return Create
	case method == http.MethodDelete:
		return Delete
	case method == http.MethodGet:
		return Get
	}
	return Kind(method + " " + path)
}
