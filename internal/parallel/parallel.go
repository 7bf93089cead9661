// Package parallel runs a function for many names, a bounded number at
// once: how cyrplan works on many hosts or stores together.
package parallel

import "sync"

// Each calls fn for every item, at most n at once (at least one), and
// returns when all calls have.
func Each[T any](items []T, n int, fn func(T)) {
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for _, item := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(item)
		})
	}
	wg.Wait()
}
