package layout

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// WithReplica returns a copy of l in which slot is one more replica of
// store, the last: the layout of a slot move while the old replica
// still replicates beside the new one. A slot l does not declare (it
// left the layout) gets the defaults of its name, as a slot named by a
// store does. l itself is not changed.
func (l *Layout) WithReplica(store, slot string) (*Layout, error) {
	st := l.Stores[store]
	if st == nil {
		return nil, fmt.Errorf("no store %q in the layout", store)
	}
	if slices.Contains(st.Slots(), slot) {
		return nil, fmt.Errorf("%s is a slot of %s already", slot, store)
	}
	s := l.Slots[slot]
	if s == nil {
		num, part, ok := parseSlotName(slot)
		if !ok {
			return nil, fmt.Errorf("%q is not a slot name", slot)
		}
		var host string
		for name, h := range l.Hosts {
			if h.Number == num {
				host = name
			}
		}
		if host == "" {
			return nil, fmt.Errorf("slot %s is on host number %d, and no host has that number", slot, num)
		}
		s = &Slot{Name: slot, Host: host, Partition: part, Meta: "/mnt/meta" + strconv.Itoa(part), Data: "/mnt/data" + strconv.Itoa(part),
			IMAPPort: l.Ports.IMAP + part, SyncPort: l.Ports.Sync + part}
	} else if s.Store != "" {
		return nil, fmt.Errorf("%s is a slot of %s", slot, s.Store)
	}
	for _, sn := range st.Slots() {
		if l.Slots[sn].Host == s.Host {
			return nil, fmt.Errorf("%s is on %s, like %s of %s", slot, s.Host, sn, store)
		}
	}
	c := *l
	c.Slots, c.Stores = maps.Clone(l.Slots), maps.Clone(l.Stores)
	moved := *s
	moved.Store, moved.Role = store, Replica
	c.Slots[slot] = &moved
	sc := *st
	sc.Replicas = append(slices.Clip(st.Replicas), slot)
	c.Stores[store] = &sc
	return &c, nil
}
