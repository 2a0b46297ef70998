package server

import (
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
)

func TestBearer(t *testing.T) {
	tests := []struct {
		header string
		want   string
		code   apierr.Code
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", ""},
		{"bearer abc", "abc", ""},
		{"  Bearer   abc  ", "abc", ""},
		{"", "", apierr.TokenMissingError},
		{"Basic dXNlcjpwYXNz", "", apierr.TokenInvalidError},
		{"Bearer", "", apierr.TokenInvalidError},
		{"Bearer ", "", apierr.TokenInvalidError},
		{"abc.def.ghi", "", apierr.TokenInvalidError},
	}
	for _, tt := range tests {
		got, err := bearer(tt.header)
		if tt.code == "" && (err != nil || got != tt.want) {
			t.Errorf("%q: got %q, %v; want %q", tt.header, got, err, tt.want)
		}
		if tt.code != "" && !apierr.Is(err, tt.code) {
			t.Errorf("%q: got %v, want %s", tt.header, err, tt.code)
		}
	}
}
