package layout

import (
	"maps"
	"slices"
	"sort"
)

// Spread describes where one host's masters go when it is out of service:
// each store whose preferred master is on Host fails over to its first
// replica.
type Spread struct {
	Host    string         `json:"host"`
	Masters int            `json:"masters"` // preferred masters on Host
	To      map[string]int `json:"to"`      // failover host -> how many of them
	Worst   int            `json:"worst"`   // the largest count in To
	WorstTo string         `json:"worstTo,omitempty"`
}

// Spreads returns the spread of every host, in host order.
func (l *Layout) Spreads() []Spread {
	out := make([]Spread, 0, len(l.Hosts))
	index := map[string]int{}
	for _, h := range l.HostNames() {
		index[h] = len(out)
		out = append(out, Spread{Host: h, To: map[string]int{}})
	}
	for _, st := range l.Stores { // counts: the order is of no matter
		from := l.Slots[st.Master].Host
		to := l.Slots[st.Replicas[0]].Host
		sp := &out[index[from]]
		sp.Masters++
		sp.To[to]++
	}
	for i := range out {
		sp := &out[i]
		targets := slices.Sorted(maps.Keys(sp.To))
		sort.SliceStable(targets, func(a, b int) bool { return l.Hosts[targets[a]].Number < l.Hosts[targets[b]].Number })
		for _, t := range targets {
			if sp.To[t] > sp.Worst {
				sp.Worst, sp.WorstTo = sp.To[t], t
			}
		}
	}
	return out
}

// checkSpread enforces failover.maxPerHost.
func (c *checker) checkSpread() {
	l := c.layout
	if l.Failover.MaxPerHost == 0 {
		return
	}
	for _, sp := range l.Spreads() {
		if sp.Worst > l.Failover.MaxPerHost {
			c.errorf([]string{"failover", "maxPerHost"},
				"if host %s is out of service, %d of its %d masters fail over to host %s; the limit is %d",
				sp.Host, sp.Worst, sp.Masters, sp.WorstTo, l.Failover.MaxPerHost).Hint = "give those stores replicas on other hosts"
		}
	}
}
