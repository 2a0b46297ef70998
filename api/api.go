// Package api is the moviebag API contract: openapi.yaml (OpenAPI 3.1, the
// one source of the spec) and reference.html, the page `make docs` renders
// from it, embedded for the programs that serve them (the local gateway).
package api

import _ "embed"

//go:embed openapi.yaml
var spec []byte

//go:embed reference.html
var reference []byte

// Spec returns the OpenAPI document as written in api/openapi.yaml. The
// caller must not modify it.
func Spec() []byte { return spec }

// Reference returns the self-contained HTML reference page rendered from
// the spec by Redocly (`make docs`). The caller must not modify it.
func Reference() []byte { return reference }
