// Package parallel runs a function for many names, a bounded number at
// once: how cyrplan works on many hosts or stores together.
package parallel

import "sync"

// Each calls fn for every name, at most n at once (at least one), and
// returns when all calls have.
func Each(names []string, n int, fn func(string)) {
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(name)
		})
	}
	wg.Wait()
}
