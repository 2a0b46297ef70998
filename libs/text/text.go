// Package text says which characters of user-supplied text are invisible, for
// the fields where two strings that look alike must not be two things (movie
// names, email addresses).
package text

import (
	"strings"
	"unicode"
)

// Invisible reports whether r renders as nothing or controls layout instead
// of showing: control characters (Cc), format characters (Cf: zero-width
// spaces and joiners, direction marks, byte order marks), line and paragraph
// separators, and every Unicode Default_Ignorable_Code_Point (the combining
// grapheme joiner U+034F, variation selectors such as U+FE0F, the Hangul
// fillers U+115F, U+1160, U+3164 and U+FFA0, the Khmer vowels U+17B4 and
// U+17B5, tag characters, ...). Default_Ignorable_Code_Point is Cf, plus
// Other_Default_Ignorable_Code_Point and Variation_Selector, minus a few
// characters that are Cf or white space anyway; so this is a superset of it.
func Invisible(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// HasInvisible reports whether s contains an Invisible character.
func HasInvisible(s string) bool { return strings.ContainsFunc(s, Invisible) }

// HasVisible reports whether s has at least one character that shows on its
// own: a letter, digit, punctuation mark or symbol that is not Invisible and
// not the blank Braille pattern U+2800. White space and combining marks
// alone show nothing.
func HasVisible(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r != brailleBlank && !Invisible(r) && unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	})
}

// brailleBlank is U+2800 BRAILLE PATTERN BLANK: a symbol (So) that renders
// as an empty cell.
const brailleBlank = '\u2800'

// CollapseSpace trims s and replaces every inner run of white space (any
// Unicode White_Space: spaces, no-break spaces, ideographic spaces) with one
// ASCII space: "Heat  2" and "Heat\u00a02" both become "Heat 2".
func CollapseSpace(s string) string { return strings.Join(strings.Fields(s), " ") }
