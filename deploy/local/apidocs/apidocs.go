// Package apidocs serves the API contract next to the local gateway's
// routes: the reference page at /docs and the spec at /openapi.yaml, both
// embedded from the api module (api/openapi.yaml is their one source). Only
// the local stack of `make run` serves them; the cluster's routes stay the
// API's.
package apidocs

import (
	"net/http"

	"github.com/moviebag/moviebag/api"
)

// The paths the documents are served at.
const (
	DocsPath = "/docs"
	SpecPath = "/openapi.yaml"
)

// Handler answers GET and HEAD of DocsPath and SpecPath and hands every
// other request to next.
func Handler(next http.Handler) http.Handler {
	docs := document("text/html; charset=utf-8", api.Reference())
	spec := document("application/yaml", api.Spec())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case DocsPath:
			docs(w, r, next)
		case SpecPath:
			spec(w, r, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// document serves body for GET and HEAD; other methods go on to next, which
// answers them with the error envelope as for any path it has no route for.
func document(contentType string, body []byte) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}
}
