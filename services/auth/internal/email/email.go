// Package email reads an email address into the one form auth stores and
// looks it up in, so that two spellings of one mailbox are one account and
// addresses that only look alike are refused rather than told apart.
package email

import (
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/text"
)

// RFC 5321 §4.5.3.1: a local part of at most 64 octets, and a path of at
// most 256 including its angle brackets, so an address of at most 254.
const (
	maxLocal   = 64
	maxAddress = 254
)

// domains maps a domain as IDNA lookup does (UTS #46: case folded, width
// folded, NFC) and turns it into ASCII (punycode), refusing what is not a
// host name (STD3 rules: no IP literal, no underscore) and labels over 63
// octets.
var domains = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// Canonical returns addr, already syntax-checked as an address, in its
// stored form: trimmed, the local part in NFC and lower case, the domain in
// IDNA ASCII and lower case ("Ada@Bücher.example" is
// "ada@xn--bcher-kva.example"). It refuses, as a SchemaValidationError
// naming the field email, control and invisible characters anywhere, a
// quoted local part, compatibility characters (fullwidth letters, ligatures)
// in the local part, a domain that is no host name, and the RFC 5321
// lengths: 64 octets for the local part and 254 for the address.
func Canonical(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if text.HasInvisible(addr) {
		return "", invalid("must not contain control or invisible characters")
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "", invalid("must be a valid email address")
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.ContainsRune(local, '"') {
		return "", invalid("must not have a quoted local part")
	}
	if norm.NFKC.String(local) != norm.NFC.String(local) {
		return "", invalid("must not contain compatibility characters such as fullwidth letters")
	}
	local = strings.ToLower(norm.NFC.String(local))
	if len(local) > maxLocal {
		return "", invalid("must have a local part of at most 64 bytes")
	}
	ascii, err := domains.ToASCII(domain)
	if err != nil || ascii == "" {
		return "", invalid("must have a valid domain name")
	}
	addr = local + "@" + strings.ToLower(ascii)
	if len(addr) > maxAddress {
		return "", invalid("must be at most 254 bytes long")
	}
	return addr, nil
}

func invalid(issue string) error {
	return apierr.New(apierr.SchemaValidationError).WithDetails(apierr.FieldError{Field: "email", Issue: issue})
}
