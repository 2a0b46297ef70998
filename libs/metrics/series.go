package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
)

// seriesCache keeps the series a vector's label values name, for the
// metrics counted on every request: a vector's WithLabelValues hashes every
// label value byte by byte, checks each is valid UTF-8 and looks the hash up
// under a read lock that every core shares, which the profiles of issue 24
// put at 11–12 % of a storage-free request. The cache finds the series with
// one map lookup instead, without a lock and without allocating: the map is
// copied on write and read through an atomic pointer. A key is asked of the
// vector the first time it is seen, so the vector's series, and the
// exposition, are exactly what calling WithLabelValues each time makes; the
// keys are bounded by the label values (constants and route templates), so
// the writes, and the copies, stop once every series was seen.
//
// The cache holds on to the series it found: a vector's series must not be
// deleted or reset while the cache is in use (none of this package's are).
type seriesCache[K comparable, V any] struct {
	resolve func(K) V               // the vector's lookup, called once per key
	m       atomic.Pointer[map[K]V] // read without a lock; replaced whole under mu
	mu      sync.Mutex              // one writer at a time
}

// newSeriesCache returns an empty cache that finds a missing series with
// resolve.
func newSeriesCache[K comparable, V any](resolve func(K) V) *seriesCache[K, V] {
	c := &seriesCache[K, V]{resolve: resolve}
	c.m.Store(&map[K]V{})
	return c
}

// get returns the series of k, asking resolve for it the first time.
func (c *seriesCache[K, V]) get(k K) V {
	if v, ok := (*c.m.Load())[k]; ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if v, ok := old[k]; ok { // added since the lookup above
		return v
	}
	v := c.resolve(k)
	next := make(map[K]V, len(old)+1)
	maps.Copy(next, old)
	next[k] = v
	c.m.Store(&next)
	return v
}
