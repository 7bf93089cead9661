package layout

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"
)

// checker decodes a unified layout (or takes one read from its syntax,
// see readPlain) and checks what the schema cannot: names, references
// between hosts, slots and stores, addresses, ports, options. Every
// problem is recorded, none stops the others.
type checker struct {
	user cue.Value // the operator's value alone: label positions
	val  cue.Value // unified with the schema: values and defaults
	// written are the fields the operator wrote, if the layout is
	// plain data (see readPlain); nil: ask user.
	written written
	layout  *Layout
	errs    Errors
	// positions set the positions of errs from a checker's CUE
	// values (see at).
	positions []func(*checker)
	// bad are the values that did not decode ("hosts.imap3.address"),
	// broken those and every entry and section above them
	// ("hosts.imap3", "hosts"): references to a broken entry are not
	// errors too.
	bad, broken map[string]bool

	hostByNumber map[int]*Host       // the first host (by name) with each number
	slotRefs     map[string][]string // where each slot is first named
	portsOverlap bool                // the port bases clash: not again per slot
	// brokenNumbers are the numbers of hosts that did not decode; 0:
	// some host's number is unknown.
	brokenNumbers map[int]bool
	buildNames    []string // every build defined, valid or not
	// checkedOptions are the good option values found so far, with
	// their imapd.conf values.
	checkedOptions map[checkedOption]string

	noSpreadLimit bool
}

var (
	dnsRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	versionRE  = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+`)
	envRE      = regexp.MustCompile(`[^A-Z0-9_]`)
	selectorRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// errorf records a problem at the value at path (or, for a value that
// came from a default, at the nearest field the operator wrote).
func (c *checker) errorf(p []string, format string, args ...any) *Error {
	e := &Error{Path: pathString(p), Msg: fmt.Sprintf(format, args...)}
	c.at(&e.Pos, p)
	c.errs = append(c.errs, e)
	return e
}

// labelErrorf records a problem with a field's name, at its label.
func (c *checker) labelErrorf(p []string, format string, args ...any) *Error {
	e := &Error{Path: pathString(p), Msg: fmt.Sprintf(format, args...)}
	c.positions = append(c.positions, func(r *checker) { e.Pos = r.labelPos(p) })
	c.errs = append(c.errs, e)
	return e
}

// at sets *pos to the position of the value at p once CUE has
// evaluated the layout (see resolve): the checks of a plain layout run
// while it does.
func (c *checker) at(pos *token.Pos, p []string) {
	c.positions = append(c.positions, func(r *checker) { *pos = r.pos(p) })
}

// resolve sets the positions of the errors from c's CUE values.
func (c *checker) resolve() {
	for _, f := range c.positions {
		f(c)
	}
	c.positions = nil
}

func (c *checker) pos(p []string) token.Pos {
	if pos := c.val.LookupPath(cuePath(p)).Pos(); pos.IsValid() && !strings.HasPrefix(pos.Filename(), "<cyrplan>") {
		return pos
	}
	return c.labelPos(p)
}

func (c *checker) labelPos(p []string) token.Pos {
	for ; len(p) > 0; p = p[:len(p)-1] {
		if pos := c.user.LookupPath(cuePath(p)).Pos(); pos.IsValid() {
			return pos
		}
	}
	return token.NoPos
}

func cuePath(p []string) cue.Path {
	sels := make([]cue.Selector, len(p))
	for i, s := range p {
		if n, err := strconv.Atoi(s); err == nil && i > 0 {
			sels[i] = cue.Index(n)
		} else {
			sels[i] = cue.Str(s)
		}
	}
	return cue.MakePath(sels...)
}

// pathString writes a path as the operator would: stores.store23.replicas[0].
func pathString(p []string) string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case i > 0 && isIndex(s):
			b.WriteString("[" + s + "]")
		case selectorRE.MatchString(s):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(strconv.Quote(s))
		}
	}
	return b.String()
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// set says whether the operator wrote the value at p (it is not a
// default, nor missing).
func (c *checker) set(p []string) bool {
	if c.written != nil {
		return c.written.has(p)
	}
	return c.user.LookupPath(cuePath(p)).Exists()
}

// failed says whether the value at p, or one it is in, did not decode.
func (c *checker) failed(p ...string) bool {
	if len(c.bad) == 0 {
		return false
	}
	for i := len(p); i >= 0; i-- {
		if c.bad[strings.Join(p[:i], ".")] {
			return true
		}
	}
	return false
}

// decode fills raw from c.val, recording what does not decode.
func (c *checker) decode(raw *rawLayout) {
	for _, p := range decode(c.val, len(c.errs) == 0, raw) {
		c.bad[p] = true
		for ; p != ""; p = parentPath(p) {
			c.broken[p] = true
		}
	}
}

// defaultMounts are the default meta and data mount points of each
// partition: /mnt/meta<N> and /mnt/data<N>.
var defaultMounts = func() (m [100][2]string) {
	for i := range m {
		m[i] = [2]string{"/mnt/meta" + strconv.Itoa(i), "/mnt/data" + strconv.Itoa(i)}
	}
	return m
}()

// parseSlotName returns the host number and partition of a slot name,
// slot<host number><two-digit partition> (^slot([0-9]+)([0-9]{2})$).
func parseSlotName(name string) (host, part int, ok bool) {
	d, ok := strings.CutPrefix(name, "slot")
	if !ok || len(d) < 3 || strings.ContainsFunc(d, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, 0, false
	}
	host, _ = strconv.Atoi(d[:len(d)-2])
	part, _ = strconv.Atoi(d[len(d)-2:])
	return host, part, true
}

// isName says whether s is a name of cyrplan's: ^[a-z0-9][a-z0-9._-]*$.
func isName(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return s != ""
}

// parentPath is the dotted path p is in: "hosts" for "hosts.imap3".
func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// check checks raw and fills c.layout from it.
func (c *checker) check(raw *rawLayout) {
	l := c.layout
	l.Domain = raw.Domain
	if !c.failed("domain") && !dnsRE.MatchString(raw.Domain) {
		c.errorf([]string{"domain"}, "%q is not a DNS domain (lower-case labels of letters, digits and -)", raw.Domain)
	}
	l.Replication = Replication{Authname: raw.Replication.Authname, Password: raw.Replication.Password}
	if !c.failed("replication", "authname") && !isName(l.Replication.Authname) {
		c.errorf([]string{"replication", "authname"}, "user name %q: use lower-case letters, digits, '.', '_' and '-'", l.Replication.Authname)
	}
	if p := l.Replication.Password; !c.failed("replication", "password") && !isName(p) {
		c.errorf([]string{"replication", "password"}, "secret name %q: use lower-case letters, digits, '.', '_' and '-'", p)
	}
	l.Ports = Ports{IMAP: raw.Ports.IMAP, Sync: raw.Ports.Sync}
	if d := l.Ports.IMAP - l.Ports.Sync; l.Ports.IMAP != 0 && l.Ports.Sync != 0 && d > -100 && d < 100 {
		p := []string{"ports", "imap"}
		if !c.set(p) {
			p[1] = "sync"
		}
		c.errorf(p, "port bases %d (imap) and %d (sync) overlap: a slot listens on base + partition (00-99), so they must be at least 100 apart", l.Ports.IMAP, l.Ports.Sync)
		c.portsOverlap = true
	}
	l.Failover = Failover{MaxPerHost: raw.Failover.MaxPerHost}
	c.checkSecrets(raw.Secrets)
	c.checkBuilds(raw.Cyrus, raw.DefaultCyrus)
	c.checkHosts(raw.Hosts)
	// Every slot declared or named by a store.
	n := len(raw.Slots)
	for _, st := range raw.Stores {
		n += 1 + len(st.Replicas)
	}
	l.Slots, c.slotRefs = make(map[string]*Slot, n), make(map[string][]string, n)
	c.checkSlots(raw.Slots)
	c.checkStores(raw.Stores)
	l.Imapd = c.checkOptions([]string{"imapd"}, raw.Imapd, l.Builds[l.DefaultBuild], "")
	// Layout-wide options must also be known to a pinned build of
	// another version.
	otherVersion := func(st *Store) *Build {
		if b, def := l.Builds[st.Build], l.Builds[l.DefaultBuild]; st.Pinned && b != nil && def != nil && b.Version != def.Version {
			return b
		}
		return nil
	}
	pinnedElsewhere := false
	for _, st := range l.Stores {
		pinnedElsewhere = pinnedElsewhere || otherVersion(st) != nil
	}
	if pinnedElsewhere {
		for _, name := range l.StoreNames() { // in order: an option's errors name each store
			if b := otherVersion(l.Stores[name]); b != nil {
				c.checkOptions([]string{"imapd"}, raw.Imapd, b, name)
			}
		}
	}
	c.checkClashes()
	if !c.noSpreadLimit {
		c.checkSpread()
	}
}

func (c *checker) checkSecrets(raw map[string]rawSecret) {
	l := c.layout
	l.Secrets = map[string]*Secret{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if !isName(name) {
			c.labelErrorf([]string{"secrets", name}, "secret name %q: use lower-case letters, digits, '.', '_' and '-'", name)
			continue
		}
		l.Secrets[name] = &Secret{Name: name, Env: raw[name].Env}
	}
	if p := l.Replication.Password; p != "" && l.Secrets[p] == nil && isName(p) {
		l.Secrets[p] = &Secret{Name: p}
	}
	for _, s := range l.Secrets {
		if s.Env == "" {
			s.Env = "CYRPLAN_SECRET_" + envRE.ReplaceAllString(strings.ToUpper(s.Name), "_")
		}
	}
}

func (c *checker) checkBuilds(raw map[string]rawBuild, def string) {
	l := c.layout
	l.Builds = map[string]*Build{}
	c.buildNames = slices.Sorted(maps.Keys(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		b := raw[name]
		p := []string{"cyrus", name}
		ok := true
		if !isName(name) {
			c.labelErrorf(p, "build name %q: use lower-case letters, digits, '.', '_' and '-'", name)
			ok = false
		}
		// A build whose prefix is broken still checks its options.
		if msg := checkPath(b.Prefix); msg != "" && !c.failed(append(p, "prefix")...) {
			c.errorf(append(p, "prefix"), "%s", msg)
			ok = false
		}
		version := b.Version
		if version == "" {
			version = versionRE.FindString(name)
		}
		switch {
		case c.failed(append(p, "version")...):
			ok = false // the schema has said why
		case version == "":
			c.labelErrorf(p, "cannot tell the Cyrus version of build %q from its name", name).Hint = `set version: "3.6.1"`
			ok = false
		case catalogFor(version) == nil:
			e := c.labelErrorf(p, "no imapd.conf option catalog for Cyrus %s (cyrplan knows %s)", version, strings.Join(catalogVersions(), ", "))
			if known := catalogVersions(); len(known) > 0 {
				e.Hint = fmt.Sprintf("to check its options as those of a known version, set version: %q", known[len(known)-1])
			}
			ok = false
		}
		if ok {
			l.Builds[name] = &Build{Name: name, Prefix: path.Clean(b.Prefix), Version: version}
		} else {
			// Already reported: references to it are not errors too.
			c.broken["cyrus."+name] = true
		}
	}
	switch {
	case c.failed("defaultCyrus"):
	case l.Builds[def] != nil:
		l.DefaultBuild = def
	case !c.broken["cyrus."+def] && !c.broken["cyrus.*"]:
		e := c.errorf([]string{"defaultCyrus"}, "build %q is not defined in cyrus", def)
		e.Hint = hintFrom(def, slices.Sorted(maps.Keys(raw)))
	}
}

func (c *checker) checkHosts(raw map[string]rawHost) {
	l := c.layout
	l.Hosts = map[string]*Host{}
	c.hostByNumber = map[int]*Host{}
	c.brokenNumbers = map[int]bool{}
	c.brokenHosts(raw)
	byAddr := map[netip.Addr]string{}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		h := raw[name]
		p := []string{"hosts", name}
		if !isName(name) {
			// Keep checking the host: its slots are not errors too.
			c.labelErrorf(p, "host name %q: use lower-case letters, digits, '.', '_' and '-' (it names a directory)", name)
		}
		host := &Host{Name: name, Number: h.Number, Address: h.Address, Interface: h.Interface, SSHUser: h.SSH.User, SSHPort: h.SSH.Port}
		l.Hosts[name] = host
		if !c.failed(append(p, "number")...) {
			if other, ok := c.hostByNumber[h.Number]; ok {
				e := c.errorf(append(p, "number"), "host number %d is also host %s's", h.Number, printable(other.Name))
				c.at(&e.Also, []string{"hosts", other.Name, "number"})
			} else {
				c.hostByNumber[h.Number] = host
			}
		}
		if !c.failed(append(p, "address")...) {
			c.checkHostAddress(append(p, "address"), h.Address, byAddr)
		}
		if !c.failed(append(p, "interface")...) && !interfaceRE.MatchString(h.Interface) {
			c.errorf(append(p, "interface"), "%q is not a network interface name: up to 15 lower-case letters, digits, '.', '_' and '-'", h.Interface)
		}
		if !c.failed(p[0], p[1], "ssh", "user") && !userRE.MatchString(h.SSH.User) {
			c.errorf(append(p, "ssh", "user"), "user name %q: up to 32 lower-case letters, digits, '.', '_' and '-', beginning with a letter or '_'", h.SSH.User)
		}
	}
}

// brokenHosts records the numbers of the hosts that did not decode:
// their slots are not errors too.
func (c *checker) brokenHosts(raw map[string]rawHost) {
	if len(c.bad) == 0 {
		return // every host decoded
	}
	it, err := c.val.LookupPath(cue.ParsePath("hosts")).Fields()
	if err != nil {
		return
	}
	for it.Next() {
		name, ok := fieldName(it.Selector())
		if !ok {
			continue
		}
		if _, decoded := raw[name]; decoded && !c.failed("hosts", name, "number") {
			continue
		}
		if n, err := it.Value().LookupPath(cue.ParsePath("number")).Int64(); err == nil {
			c.brokenNumbers[int(n)] = true
		} else {
			c.brokenNumbers[0] = true // any number
		}
	}
}

// checkHostAddress checks a host's address, which must be unique.
func (c *checker) checkHostAddress(p []string, address string, byAddr map[netip.Addr]string) {
	if msg := checkAddress(address); msg != "" {
		c.errorf(p, "%s", msg)
		return
	}
	addr := netip.MustParseAddr(address)
	if other, ok := byAddr[addr]; ok {
		e := c.errorf(p, "address %s is also host %s's", address, printable(other))
		c.at(&e.Also, []string{"hosts", other, "address"})
		return
	}
	byAddr[addr] = p[1]
}

// slot returns the slot called name, creating it from its name on first
// use; nil (with an error at p) for a name that is not a slot name or
// names no host.
func (c *checker) slot(name string, p []string, label bool) *Slot {
	l := c.layout
	if s, ok := l.Slots[name]; ok {
		return s
	}
	report := c.errorf
	if label {
		report = c.labelErrorf
	}
	hostNum, part, ok := parseSlotName(name)
	if !ok {
		report(p, "%q is not a slot name: slot<host number><two-digit partition>, like slot608", name)
		return nil
	}
	host := c.hostByNumber[hostNum]
	if host == nil {
		if c.broken["hosts.*"] || c.brokenNumbers[hostNum] || c.brokenNumbers[0] {
			return nil // the host may be one that did not decode
		}
		report(p, "slot %s is on host number %d, and no host has that number", name, hostNum)
		return nil
	}
	s := &Slot{
		Name:      name,
		Host:      host.Name,
		Partition: part,
		Meta:      defaultMounts[part][0],
		Data:      defaultMounts[part][1],
		IMAPPort:  l.Ports.IMAP + part,
		SyncPort:  l.Ports.Sync + part,
		Role:      Spare,
	}
	l.Slots[name] = s
	c.slotRefs[name] = p
	return s
}

func (c *checker) checkSlots(raw map[string]rawSlot) {
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		r := raw[name]
		p := []string{"slots", name}
		s := c.slot(name, p, true)
		if s == nil {
			continue
		}
		for _, f := range []struct {
			field string
			val   string
			dst   *string
		}{{"meta", r.Meta, &s.Meta}, {"data", r.Data, &s.Data}} {
			if !c.set(append(p, f.field)) || c.failed(append(p, f.field)...) {
				continue
			}
			if msg := checkPath(f.val); msg != "" {
				c.errorf(append(p, f.field), "%s", msg)
				continue
			}
			*f.dst = path.Clean(f.val)
		}
		if r.Ports.IMAP != 0 {
			s.IMAPPort = r.Ports.IMAP
		}
		if r.Ports.Sync != 0 {
			s.SyncPort = r.Ports.Sync
		}
	}
}

func (c *checker) checkStores(raw map[string]rawStore) {
	l := c.layout
	l.Stores = make(map[string]*Store, len(raw))
	inStore := make(map[string][]string, len(l.Slots)) // slot -> path of its first use
	floating := make(map[netip.Addr][]string, len(l.Hosts)+2*len(raw))
	for _, h := range l.HostNames() {
		if a, err := netip.ParseAddr(l.Hosts[h].Address); err == nil {
			floating[a] = []string{"hosts", h, "address"}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		r := raw[name]
		p := []string{"stores", name}
		if !isName(name) {
			c.labelErrorf(p, "store name %q: use lower-case letters, digits, '.', '_' and '-'", name)
			continue
		}
		cp := append(p, "cyrus")
		pinned := c.set(cp) && !c.failed(cp...)
		st := &Store{Name: name, Master: r.Master, Replicas: r.Replicas, Build: r.Cyrus, Pinned: pinned,
			IP: FloatingIPs{Master: r.IP.Master, Replica: r.IP.Replica}}
		ok := true
		hosts := map[string]string{}
		use := func(slotName string, fp []string, role Role) {
			s := c.slot(slotName, fp, false)
			if s == nil {
				ok = false
				return
			}
			if prev, dup := inStore[slotName]; dup {
				switch {
				case prev[1] != name:
					e := c.errorf(fp, "slot %s is already in store %s", slotName, prev[1])
					c.at(&e.Also, prev)
				case role == Replica && len(prev) == 3:
					c.errorf(fp, "slot %s is the master of store %s and cannot also be its replica", slotName, name)
				default:
					c.errorf(fp, "slot %s is listed twice in store %s", slotName, name)
				}
				ok = false
				return
			}
			inStore[slotName] = fp
			if other, same := hosts[s.Host]; same {
				c.errorf(fp, "slot %s is on host %s, like slot %s; a store's slots must be on different hosts", slotName, s.Host, other)
				ok = false
			}
			hosts[s.Host] = slotName
			s.Store, s.Role = name, role
		}
		if c.broken["stores."+name] {
			ok = false // the schema has said why; check the rest
		}
		if !c.failed(append(p, "master")...) {
			use(r.Master, append(p, "master"), Master)
		}
		for i, rep := range r.Replicas {
			use(rep, append(p, "replicas", strconv.Itoa(i)), Replica)
		}
		if !pinned {
			st.Build = l.DefaultBuild
		} else if l.Builds[st.Build] == nil {
			ok = false
			if !c.broken["cyrus."+st.Build] && !c.broken["cyrus.*"] {
				e := c.errorf(append(p, "cyrus"), "build %q is not defined in cyrus", st.Build)
				e.Hint = hintFrom(st.Build, c.buildNames)
			}
		}
		for _, f := range []struct{ field, val string }{{"master", r.IP.Master}, {"replica", r.IP.Replica}} {
			fp := append(p, "ip", f.field)
			if !c.set(fp) || c.failed(fp...) {
				continue
			}
			if msg := checkAddress(f.val); msg != "" {
				c.errorf(fp, "%s", msg)
				continue
			}
			a := netip.MustParseAddr(f.val)
			if prev, dup := floating[a]; dup {
				e := c.errorf(fp, "floating address %s is also %s", f.val, pathString(prev))
				c.at(&e.Also, prev)
				continue
			}
			floating[a] = fp
		}
		build := l.Builds[st.Build]
		if build == nil {
			build = l.Builds[l.DefaultBuild] // still check the options
		}
		st.Imapd = c.checkOptions(append(p, "imapd"), r.Imapd, build, "")
		if ok {
			l.Stores[name] = st
		}
	}
}

// checkClashes checks that no two slots on one host share or nest
// partition mount points, or share a listen port (the imap and sync
// ports of one slot included). It runs once every slot is known,
// declared or named by a store.
func (c *checker) checkClashes() {
	l := c.layout
	// The slots of each host, in SlotNames order: a clash is reported
	// at the later slot.
	var hosts []string
	slots := map[string][]string{}
	for _, name := range l.SlotNames() {
		h := l.Slots[name].Host
		if slots[h] == nil {
			hosts = append(hosts, h)
		}
		slots[h] = append(slots[h], name)
	}
	dirs := map[string]slotField{} // mount point -> user
	ports := map[int]slotField{}   // port -> user
	var mounts []slotField         // every mount point but the duplicates
	for _, h := range hosts {
		clear(dirs)
		clear(ports)
		mounts = mounts[:0]
		for _, name := range slots[h] {
			s := l.Slots[name]
			for _, f := range [...]slotField{{name, "meta", s.Meta, 0, h}, {name, "data", s.Data, 0, h}} {
				if other, dup := dirs[f.dir]; dup {
					c.clash(f, other, func(at, other slotField) string {
						return fmt.Sprintf("%s is also the %s mount point of slot %s on host %s", at.dir, other.field, other.slot, h)
					})
				} else {
					dirs[f.dir] = f
					mounts = append(mounts, f)
				}
			}
			for _, f := range [...]slotField{{name, "imap", "", s.IMAPPort, h}, {name, "sync", "", s.SyncPort, h}} {
				if other, dup := ports[f.port]; dup {
					c.clash(f, other, func(at, other slotField) string {
						return fmt.Sprintf("listen address %s:%d is also the %s port of slot %s", l.Hosts[h].Address, at.port, other.field, other.slot)
					})
				} else {
					ports[f.port] = f
				}
			}
		}
		for _, f := range mounts {
			if outer, ok := enclosing(dirs, f.dir); ok {
				c.clash(f, outer, nested)
			}
		}
	}
}

// enclosing returns the mount point in dirs that dir is below, if any.
func enclosing(dirs map[string]slotField, dir string) (slotField, bool) {
	for d := path.Dir(dir); d != "/" && d != "."; d = path.Dir(d) {
		if f, ok := dirs[d]; ok {
			return f, true
		}
	}
	return slotField{}, false
}

// nested says how two mount points of a host nest, from at's side.
func nested(at, other slotField) string {
	how := "inside"
	if strings.HasPrefix(other.dir, at.dir+"/") {
		how = "above"
	}
	return fmt.Sprintf("%s is %s %s, the %s mount point of slot %s on host %s; a host's mount points may not nest", at.dir, how, other.dir, other.field, other.slot, at.host)
}

// slotField is a slot's mount point (meta, data) or port (imap, sync).
type slotField struct {
	slot, field string
	dir         string
	port        int
	host        string
}

// path is where the operator sets the field: slots.slot301.ports.imap.
func (f slotField) path() []string {
	if f.port != 0 {
		return []string{"slots", f.slot, "ports", f.field}
	}
	return []string{"slots", f.slot, f.field}
}

// clash reports that a's value is also (or clashes with) b's, at the one
// of the two that the operator wrote (the other is a default derived
// from a slot name); msg describes the clash from the reported one's
// side.
func (c *checker) clash(a, b slotField, msg func(at, other slotField) string) {
	set := func(f slotField) bool { return c.set(f.path()) }
	if !set(a) && set(b) {
		a, b = b, a
	}
	if !set(a) && a.port != 0 && c.portsOverlap {
		return // both derived from the port bases: reported there
	}
	e := &Error{Path: pathString(a.path()), Msg: msg(a, b)}
	if set(a) {
		c.at(&e.Pos, a.path())
	} else {
		c.at(&e.Pos, c.slotRefs[a.slot]) // where the slot is named
	}
	if set(b) {
		c.at(&e.Also, b.path())
	}
	c.errs = append(c.errs, e)
}

func hintFrom(s string, candidates []string) string {
	if m := suggest(s, candidates); m != "" {
		return "did you mean " + m + "?"
	}
	if len(candidates) > 0 {
		sort.Strings(candidates)
		return "defined: " + strings.Join(candidates, ", ")
	}
	return ""
}
