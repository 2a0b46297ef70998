package text_test

import (
	"testing"

	"github.com/moviebag/moviebag/libs/text"
)

func TestInvisibleCoversDefaultIgnorables(t *testing.T) {
	for _, r := range []rune{
		'\u0000', '\u001f', '\u007f', '\u00ad', '\u034f', '\u115f', '\u1160', '\u17b4', '\u17b5', '\u180b',
		'\u200b', '\u200d', '\u200e', '\u2028', '\u2029', '\u2060', '\u2065', '\u3164', '\ufe00', '\ufe0f',
		'\ufeff', '\uffa0', '\U000e0001', '\U000e0020', '\U000e0100',
	} {
		if !text.Invisible(r) {
			t.Errorf("Invisible(%U) = false, want true", r)
		}
	}
	for _, r := range []rune{'a', 'Z', '0', ' ', '\u00e9', '\u0301', 'ж', '中', '!', '€', '\uff28'} {
		if text.Invisible(r) {
			t.Errorf("Invisible(%U) = true, want false", r)
		}
	}
}

func TestHasVisible(t *testing.T) {
	for s, want := range map[string]bool{
		"Heat": true, "2": true, "!": true, "\u0301": false, " \u00a0\u3000": false, "\u2800": false,
		"\u3164": false, "\u0301a": true, "": false,
	} {
		if got := text.HasVisible(s); got != want {
			t.Errorf("HasVisible(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCollapseSpace(t *testing.T) {
	for in, want := range map[string]string{
		" Heat  2 ": "Heat 2", "Heat\u00a0\u00a02": "Heat 2", "Heat\u30002": "Heat 2", "Heat": "Heat",
	} {
		if got := text.CollapseSpace(in); got != want {
			t.Errorf("CollapseSpace(%q) = %q, want %q", in, got, want)
		}
	}
}
