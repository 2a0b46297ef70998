package userevents_test

import (
	"errors"
	"testing"

	"github.com/moviebag/moviebag/libs/stream"
	"github.com/moviebag/moviebag/libs/userevents"
)

// Parse reads what UserDeleted appends and refuses anything else for good:
// an unknown type, or a user that is not an id auth issues (24 lower-case
// hex digits), so a consumer never deletes by a filter it was not meant to.
func TestParse(t *testing.T) {
	const user = "6b06f1ebcf512d8be09e8da8"
	ev, err := userevents.Parse(stream.Message{ID: "1-0", Values: map[string]string{"type": userevents.Deleted, "user": user}})
	if err != nil || ev.Type != userevents.Deleted || ev.User != user {
		t.Fatalf("Parse = %+v, %v", ev, err)
	}
	for name, values := range map[string]map[string]string{
		"no type":      {"user": user},
		"another type": {"type": "user.created", "user": user},
		"no user":      {"type": userevents.Deleted},
		"upper case":   {"type": userevents.Deleted, "user": "6B06F1EBCF512D8BE09E8DA8"},
		"too short":    {"type": userevents.Deleted, "user": user[:23]},
		"not hex":      {"type": userevents.Deleted, "user": "../../etc/passwd00000000"},
		"empty":        {},
	} {
		_, err := userevents.Parse(stream.Message{ID: "1-0", Values: values})
		if !errors.Is(err, userevents.ErrMalformed) || !stream.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent ErrMalformed", name, err)
		}
	}
}
