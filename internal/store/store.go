// Package store reads a store's live state from its hosts: the role each
// of its slots records (current master, replicas), so that operators can
// name a store and cyrplan finds the slot, the host and the build.
package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/onhost"
	"github.com/cyrplan/cyrplan/internal/transport"
)

// Live is a store as its hosts see it now.
type Live struct {
	Store    *layout.Store
	Roles    map[string]layout.Role // current role per slot; a slot whose host did not answer is missing
	Recorded map[string]bool        // the role comes from the host, not from the layout's preference
	Down     map[string]error       // slots whose host did not answer, and why
}

// Read asks the hosts of st's slots for the roles they record. hosts may
// lack a host (it could not be reached): its slots go to Down with errs'
// reason. A slot with no recorded role has the role the layout prefers.
func Read(ctx context.Context, l *layout.Layout, st *layout.Store, hosts map[string]transport.Host, errs map[string]error) *Live {
	lv := &Live{Store: st, Roles: map[string]layout.Role{}, Recorded: map[string]bool{}, Down: map[string]error{}}
	for _, sn := range st.Slots() {
		hn := l.Slots[sn].Host
		h := hosts[hn]
		if h == nil {
			err := errs[hn]
			if err == nil {
				err = fmt.Errorf("%s: not connected", hn)
			}
			lv.Down[sn] = err
			continue
		}
		role, recorded, err := onhost.ReadRole(ctx, h, sn)
		if err != nil {
			lv.Down[sn] = err
			continue
		}
		if !recorded {
			role = l.Slots[sn].Role
		}
		lv.Roles[sn], lv.Recorded[sn] = role, recorded
	}
	return lv
}

// Masters returns the slots that run as master, in store order. One is
// normal; none means the store takes no writes; two is split brain.
func (lv *Live) Masters() []string {
	var out []string
	for _, sn := range lv.Store.Slots() {
		if lv.Roles[sn] == layout.Master {
			out = append(out, sn)
		}
	}
	return out
}

// Replicas returns the slots that run as replica, in store order.
func (lv *Live) Replicas() []string {
	var out []string
	for _, sn := range lv.Store.Slots() {
		if lv.Roles[sn] == layout.Replica {
			out = append(out, sn)
		}
	}
	return out
}

// Master returns the current master, or an error that says why there is
// not exactly one.
func (lv *Live) Master() (string, error) {
	m := lv.Masters()
	switch {
	case len(m) == 1:
		return m[0], nil
	case len(m) > 1:
		return "", fmt.Errorf("store %s has %d masters (%s): run cyrplan failover %s --to SLOT to settle it", lv.Store.Name, len(m), strings.Join(m, ", "), lv.Store.Name)
	case len(lv.Down) > 0:
		return "", fmt.Errorf("store %s: no master among the slots that answer (%s)", lv.Store.Name, downList(lv.Down))
	}
	return "", fmt.Errorf("store %s has no master", lv.Store.Name)
}

// Replica returns the first slot that runs as replica.
func (lv *Live) Replica() (string, error) {
	if r := lv.Replicas(); len(r) > 0 {
		return r[0], nil
	}
	if len(lv.Down) > 0 {
		return "", fmt.Errorf("store %s: no replica among the slots that answer (%s)", lv.Store.Name, downList(lv.Down))
	}
	return "", fmt.Errorf("store %s has no replica", lv.Store.Name)
}

// Moved reports whether the store runs backwards: its current master is
// not its preferred master.
func (lv *Live) Moved() bool {
	m := lv.Masters()
	return len(m) == 1 && m[0] != lv.Store.Master
}

func downList(down map[string]error) string {
	var parts []string
	for sn, err := range down {
		parts = append(parts, sn+": "+err.Error())
	}
	return strings.Join(parts, "; ")
}
