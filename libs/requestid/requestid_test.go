package requestid_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/moviebag/moviebag/libs/requestid"
)

// A generated id is what uuid.NewString made before: a version 4 UUID of
// the RFC 4122 variant in canonical lower-case form, fresh every time.
func TestNewIsAUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := string(requestid.AppendNew([]byte("prefix:")))
		id, ok := strings.CutPrefix(id, "prefix:")
		if !ok || len(id) != requestid.Len {
			t.Fatalf("AppendNew wrote %q", id)
		}
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id {
			t.Fatalf("%q: %v, version %d, variant %v", id, err, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
		if !requestid.Sane(id) {
			t.Fatalf("a generated id %q is not sane", id)
		}
	}
}

func TestResolve(t *testing.T) {
	for _, tt := range []struct {
		client string
		kept   bool
	}{
		{"abc-123", true},
		{"a/b+c=d:e.f_g", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"bad id", false},
		{"quote\"", false},
		{"é", false},
	} {
		got := requestid.Resolve(tt.client)
		if tt.kept != (got == tt.client) {
			t.Errorf("Resolve(%q) = %q, kept %v", tt.client, got, !tt.kept)
		}
		if !tt.kept {
			if _, err := uuid.Parse(got); err != nil || len(got) != requestid.Len {
				t.Errorf("Resolve(%q) = %q: not a fresh UUID", tt.client, got)
			}
		}
	}
}

func BenchmarkAppendNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var buf [requestid.Len]byte
		_ = requestid.AppendNew(buf[:0])
	}
}
