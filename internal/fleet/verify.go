package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/parallel"
	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/store"
	"github.com/cyrplan/cyrplan/internal/verify"
)

// VerifyOptions are how verify reports its progress.
type VerifyOptions struct {
	// Progress, if set, is told each time a store is compared.
	Progress func(done, total int)
}

// Verify compares, for each of stores (at most c.Parallelism at once),
// the mailboxes of its current master with those of its replicas over
// IMAP, logging in as the layout's replication user, and records the
// result on the master's host for status. The results are in the order
// of stores.
func Verify(ctx context.Context, c Config, l *layout.Layout, stores []string, opts VerifyOptions) ([]*report.Verify, error) {
	login, err := canaryLogin(l, c)
	if err != nil {
		return nil, err
	}
	hostSet := map[string]bool{}
	for _, name := range stores {
		for _, sn := range l.Stores[name].Slots() {
			hostSet[l.Slots[sn].Host] = true
		}
	}
	hs, err := c.Connect(ctx, l, slices.Sorted(maps.Keys(hostSet)))
	if err != nil {
		return nil, err
	}
	defer hs.Close()
	out := make([]*report.Verify, len(stores))
	var mu sync.Mutex
	done := 0
	parallel.Each(stores, c.parallelism(), func(name string) {
		v := verifyStore(ctx, c, l, hs, name, verify.Login{User: login.User, Password: login.Password})
		mu.Lock()
		defer mu.Unlock()
		out[slices.Index(stores, name)] = v
		if done++; opts.Progress != nil {
			opts.Progress(done, len(stores))
		}
	})
	return out, nil
}

// verifyStore compares one store and records the result.
func verifyStore(ctx context.Context, c Config, l *layout.Layout, hs *Hosts, name string, login verify.Login) *report.Verify {
	lv := store.Read(ctx, l, l.Stores[name], hs.Conns, hs.Errs)
	master, err := lv.Master()
	if err != nil {
		return &report.Verify{Store: name, Error: err.Error()}
	}
	replicas := map[string]string{}
	for _, sn := range l.Stores[name].Slots() {
		if sn != master {
			replicas[sn] = slotIMAP(l, sn)
		}
	}
	v := verify.Store(ctx, master, slotIMAP(l, master), replicas, login)
	v.Store = name
	h := hs.Conns[l.Slots[master].Host]
	if h == nil {
		return v
	}
	checks, err := onhost.ReadChecks(ctx, h, name)
	if checks == nil || checks.Master != master {
		checks = &report.Checks{Store: name, Master: master}
	}
	checks.Verify = v
	if err = errors.Join(err, onhost.WriteChecks(ctx, h, checks)); err != nil {
		c.warn(fmt.Sprintf("%s: the result is not recorded on %s for status: %v", name, h.Name(), err))
	}
	return v
}
