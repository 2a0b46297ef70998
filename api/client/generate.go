// Package client is the Go client of the moviebag API, generated from
// api/openapi.yaml with oapi-codegen: ClientWithResponses has one method per
// operation, with typed request bodies and parsed answers, error envelopes
// included. Regenerate with `go generate ./...` in the api module; a test
// fails while the committed code is out of date.
package client

//go:generate go tool oapi-codegen -config config.yaml ../openapi.yaml
