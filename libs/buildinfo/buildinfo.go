// Package buildinfo carries the version stamped into a binary at build time:
//
//	go build -ldflags "-X github.com/moviebag/moviebag/libs/buildinfo.Version=v1.2.3 \
//	  -X github.com/moviebag/moviebag/libs/buildinfo.Revision=abc123"
package buildinfo

import "runtime/debug"

// Version and Revision are set with -ldflags -X; see the package comment.
var (
	Version  = "dev"
	Revision = ""
)

// Get returns the version and the revision, falling back to the VCS revision
// the Go toolchain recorded when none was stamped.
func Get() (version, revision string) {
	revision = Revision
	if revision == "" {
		revision = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					revision = s.Value
				}
			}
		}
	}
	return Version, revision
}
