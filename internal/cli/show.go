package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
)

func newShowCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show (store|slot|host) NAME",
		Short: "Show what the layout says about a store, a slot or a host",
		Example: `  cyrplan show store store23
  cyrplan show slot slot608 --json
  cyrplan show host imap6`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			v, err := describe(l, args[0], args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, v)
			}
			v.print(g.stdout)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// describer is a view of one thing in the layout.
type describer interface{ print(io.Writer) }

func describe(l *layout.Layout, kind, name string) (describer, error) {
	switch kind {
	case "store":
		if st := l.Stores[name]; st != nil {
			return storeViewOf(l, st), nil
		}
		return nil, notFound("store", name, keys(l.Stores))
	case "slot":
		if s := l.Slots[name]; s != nil {
			return slotViewOf(l, s), nil
		}
		return nil, notFound("slot", name, keys(l.Slots))
	case "host":
		if h := l.Hosts[name]; h != nil {
			return hostViewOf(l, h), nil
		}
		return nil, notFound("host", name, keys(l.Hosts))
	}
	return nil, fmt.Errorf("show: unknown kind %q: use store, slot or host", kind)
}

func notFound(kind, name string, known []string) error {
	return fmt.Errorf("no %s %q in the layout (%d %ss: %s)", kind, name, len(known), kind, abbreviate(known, 8))
}

func abbreviate(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + ", …"
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortNatural(out)
	return out
}

type slotRef struct {
	Slot    string `json:"slot"`
	Host    string `json:"host"`
	Address string `json:"address"`
	IMAP    int    `json:"imapPort"`
}

func refOf(l *layout.Layout, name string) slotRef {
	s := l.Slots[name]
	return slotRef{Slot: name, Host: s.Host, Address: l.Hosts[s.Host].Address, IMAP: s.IMAPPort}
}

type storeView struct {
	Store    string            `json:"store"`
	Master   slotRef           `json:"preferredMaster"`
	Replicas []slotRef         `json:"replicas"`
	Cyrus    string            `json:"cyrus"`
	Prefix   string            `json:"prefix"`
	Pinned   bool              `json:"pinned"`
	Floating map[string]string `json:"floating"` // name -> address
	Imapd    layout.Options    `json:"imapd"`
}

func storeViewOf(l *layout.Layout, st *layout.Store) *storeView {
	v := &storeView{Store: st.Name, Master: refOf(l, st.Master), Cyrus: st.Build, Prefix: l.Builds[st.Build].Prefix,
		Pinned: st.Pinned, Floating: map[string]string{}, Imapd: st.Imapd}
	for _, r := range st.Replicas {
		v.Replicas = append(v.Replicas, refOf(l, r))
	}
	v.Floating[st.Name+"m."+l.Domain] = st.IP.Master
	if st.IP.Replica != "" {
		v.Floating[st.Name+"r."+l.Domain] = st.IP.Replica
	}
	return v
}

func (v *storeView) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "store\t%s\n", v.Store)
	fmt.Fprintf(tw, "preferred master\t%s on %s (%s:%d)\n", v.Master.Slot, v.Master.Host, v.Master.Address, v.Master.IMAP)
	for i, r := range v.Replicas {
		label := ""
		if i == 0 {
			label = "replicas"
		}
		fmt.Fprintf(tw, "%s\t%s on %s (%s:%d)\n", label, r.Slot, r.Host, r.Address, r.IMAP)
	}
	pin := "default"
	if v.Pinned {
		pin = "pinned"
	}
	fmt.Fprintf(tw, "cyrus\t%s (%s), %s\n", v.Cyrus, v.Prefix, pin)
	for i, name := range keys(v.Floating) {
		label := ""
		if i == 0 {
			label = "floating"
		}
		fmt.Fprintf(tw, "%s\t%s %s\n", label, name, v.Floating[name])
	}
	for i, k := range v.Imapd.Keys() {
		label := ""
		if i == 0 {
			label = "imapd"
		}
		fmt.Fprintf(tw, "%s\t%s: %s\n", label, k, v.Imapd[k])
	}
	tw.Flush()
}

type slotView struct {
	Slot      string `json:"slot"`
	Host      string `json:"host"`
	Address   string `json:"address"`
	Partition int    `json:"partition"`
	Store     string `json:"store,omitempty"`
	Role      string `json:"preferredRole"`
	Cyrus     string `json:"cyrus"`
	Prefix    string `json:"prefix"`
	Meta      string `json:"meta"`
	Data      string `json:"data"`
	IMAPPort  int    `json:"imapPort"`
	SyncPort  int    `json:"syncPort"`
	Config    string `json:"imapdConf"`
	Init      string `json:"initScript"`
}

func slotViewOf(l *layout.Layout, s *layout.Slot) *slotView {
	b := l.BuildOf(s.Name)
	p := hostpath.Of(s.Name, s.Meta)
	return &slotView{Slot: s.Name, Host: s.Host, Address: l.Hosts[s.Host].Address, Partition: s.Partition,
		Store: s.Store, Role: string(s.Role), Cyrus: b.Name, Prefix: b.Prefix, Meta: s.Meta, Data: s.Data,
		IMAPPort: s.IMAPPort, SyncPort: s.SyncPort, Config: p.IMAPDConf, Init: p.InitScript}
}

func (v *slotView) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "slot\t%s\n", v.Slot)
	fmt.Fprintf(tw, "host\t%s (%s), partition %d\n", v.Host, v.Address, v.Partition)
	if v.Store != "" {
		fmt.Fprintf(tw, "store\t%s, preferred %s\n", v.Store, v.Role)
	} else {
		fmt.Fprintf(tw, "store\tnone (spare)\n")
	}
	fmt.Fprintf(tw, "cyrus\t%s (%s)\n", v.Cyrus, v.Prefix)
	fmt.Fprintf(tw, "meta\t%s\n", v.Meta)
	fmt.Fprintf(tw, "data\t%s\n", v.Data)
	fmt.Fprintf(tw, "ports\timap %d, sync %d\n", v.IMAPPort, v.SyncPort)
	fmt.Fprintf(tw, "imapd.conf\t%s\n", v.Config)
	fmt.Fprintf(tw, "init script\t%s\n", v.Init)
	tw.Flush()
}

type hostView struct {
	Host    string         `json:"host"`
	Number  int            `json:"number"`
	Address string         `json:"address"`
	SSH     string         `json:"ssh"`
	Slots   []hostSlotView `json:"slots"`
}

type hostSlotView struct {
	Slot  string `json:"slot"`
	Store string `json:"store,omitempty"`
	Role  string `json:"preferredRole"`
	Cyrus string `json:"cyrus"`
	IMAP  int    `json:"imapPort"`
}

func hostViewOf(l *layout.Layout, h *layout.Host) *hostView {
	v := &hostView{Host: h.Name, Number: h.Number, Address: h.Address, SSH: fmt.Sprintf("%s@%s:%d", h.SSHUser, h.Address, h.SSHPort)}
	for _, name := range l.SlotsOn(h.Name) {
		s := l.Slots[name]
		v.Slots = append(v.Slots, hostSlotView{Slot: name, Store: s.Store, Role: string(s.Role), Cyrus: l.BuildOf(name).Name, IMAP: s.IMAPPort})
	}
	return v
}

func (v *hostView) print(w io.Writer) {
	fmt.Fprintf(w, "host %s (number %d, %s, ssh %s)\n\n", v.Host, v.Number, v.Address, v.SSH)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tSTORE\tPREFERRED ROLE\tCYRUS\tIMAP PORT")
	for _, s := range v.Slots {
		store := s.Store
		if store == "" {
			store = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.Slot, store, s.Role, s.Cyrus, s.IMAP)
	}
	tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
