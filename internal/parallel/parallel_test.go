package parallel

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEach(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 3, 100} {
		var (
			mu         sync.Mutex
			seen       []string
			running    atomic.Int32
			mostAtOnce atomic.Int32
		)
		names := []string{"a", "b", "c", "d", "e", "f", "g"}
		Each(names, n, func(name string) {
			now := running.Add(1)
			for {
				most := mostAtOnce.Load()
				if now <= most || mostAtOnce.CompareAndSwap(most, now) {
					break
				}
			}
			mu.Lock()
			seen = append(seen, name)
			mu.Unlock()
			running.Add(-1)
		})
		slices.Sort(seen)
		if !slices.Equal(seen, names) {
			t.Errorf("n=%d: called for %q; want each of %q once", n, seen, names)
		}
		if limit := int32(max(n, 1)); mostAtOnce.Load() > limit {
			t.Errorf("n=%d: %d calls at once; want at most %d", n, mostAtOnce.Load(), limit)
		}
	}
}
