// Package mailpit pins the mail server of local runs, tests and the test
// cluster: Mailpit (github.com/axllent/mailpit), an SMTP server that keeps
// every mail it receives and serves them over a REST API (/api/v1/messages).
// It is a tool of this module, built with
//
//	go build -C deploy/mailpit -o bin/mailpit github.com/axllent/mailpit
//
// (`make bin/mailpit`); the module's version pins it. Its web UI's assets
// are not in the Go module, so the UI page is blank: read mail through the
// API.
package mailpit
