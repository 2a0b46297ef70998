// Package gateway is the local stand-in for the cluster's ingress: the same
// routing table in front of the two services, and the same error envelope
// for what it answers itself.
package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/requestid"
)

// Upstream names a service behind the gateway.
type Upstream string

// The upstreams.
const (
	Auth   Upstream = "auth"
	Movies Upstream = "movies"
)

// Route is one line of the routing table: requests whose path is Path, or
// starts with Path + "/" when Prefix is set, go to Upstream.
type Route struct {
	Path     string
	Prefix   bool
	Upstream Upstream
}

// Routes is the routing table, the same as the Helm chart's ingress.
var Routes = []Route{
	{Path: "/api/auth", Prefix: true, Upstream: Auth},
	{Path: "/.well-known/jwks.json", Upstream: Auth},
	{Path: "/api/movies", Prefix: true, Upstream: Movies},
}

// Match returns the upstream for path, if any.
func Match(path string) (Upstream, bool) {
	for _, r := range Routes {
		if path == r.Path || (r.Prefix && strings.HasPrefix(path, r.Path+"/")) {
			return r.Upstream, true
		}
	}
	return "", false
}

// New returns the gateway handler proxying to the given base URLs.
func New(upstreams map[Upstream]*url.URL, logger *slog.Logger) http.Handler {
	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	proxies := make(map[Upstream]*httputil.ReverseProxy, len(upstreams))
	for name, target := range upstreams {
		proxies[name] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
			},
			Transport: transport,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				id := r.Header.Get(requestid.Header)
				logger.Warn("upstream unavailable", "upstream", string(name), "request_id", id, "error", err)
				w.Header().Set(requestid.Header, id)
				apierr.WriteHTTP(w, apierr.Unavailable(err), id)
			},
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestid.Resolve(r.Header.Get(requestid.Header))
		r.Header.Set(requestid.Header, id)
		up, ok := Match(r.URL.Path)
		if !ok {
			w.Header().Set(requestid.Header, id)
			apierr.WriteHTTP(w, apierr.New(apierr.NotFoundError), id)
			return
		}
		proxies[up].ServeHTTP(w, r)
	})
}
