package denylist

// Resyncs is how many full resyncs of the mirror have completed (tests wait on it).
func (d *Denylist) Resyncs() int64 { return d.resyncs.Load() }
