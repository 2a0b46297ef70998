package email_test

import (
	"strings"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/services/auth/internal/email"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		" Ada@Example.COM ":                 "ada@example.com",
		"ada@B\u00fccher.example":           "ada@xn--bcher-kva.example",
		"ada@bu\u0308cher.example":          "ada@xn--bcher-kva.example",
		"ada@XN--BCHER-KVA.example":         "ada@xn--bcher-kva.example",
		"ada@\uff45\uff58ample.com":         "ada@example.com", // fullwidth domain: IDNA maps it
		"J\u00f6rg@example.com":             "j\u00f6rg@example.com",
		"Jo\u0308rg@example.com":            "j\u00f6rg@example.com", // NFC
		strings.Repeat("a", 64) + "@ex.com": strings.Repeat("a", 64) + "@ex.com",
	} {
		got, err := email.Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for name, in := range map[string]string{
		"zero-width space":       "ada\u200b@example.com",
		"variation selector":     "ada\ufe0f@example.com",
		"soft hyphen in domain":  "ada@exam\u00adple.com",
		"quoted local part":      `"ada"@example.com`,
		"fullwidth local part":   "\uff41da@example.com",
		"ligature in local part": "\ufb01@example.com",
		"local part of 65":       strings.Repeat("a", 65) + "@example.com",
		"address of 255":         strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com",
		"IP literal":             "ada@[127.0.0.1]",
		"underscore in domain":   "ada@ex_ample.com",
		"no local part":          "@example.com",
	} {
		if got, err := email.Canonical(in); !apierr.Is(err, apierr.SchemaValidationError) {
			t.Errorf("%s: Canonical(%q) = %q, %v; want SchemaValidationError", name, in, got, err)
		}
	}
}
