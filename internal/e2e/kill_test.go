package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/fleetgen"
	"github.com/cyrplan/cyrplan/internal/health"
)

// The SIGKILL tests: an apply killed at a random moment, then run again,
// must leave nothing behind and lose no start, reload, restart or stop
// (README, plan and apply: "no restart is ever lost", "after a SIGKILL
// no file is half-written, and the next apply breaks the dead process's
// lock"). Each test logs its seed; CYRPLAN_KILL_SEED=<seed> replays its
// random choices (the moments of the kills depend on timing as well).

const killSecret = "kill-loop-repl-pw"

// killFleet is a generated layout (package fleetgen) that the kill loop
// changes between applies: an imapd.conf option of every slot (reloads),
// the IMAP port base (restarts) and which stores exist (stops, starts).
type killFleet struct {
	dir       string
	fleetCUE  []byte       // fleetgen's fleet.cue, as generated
	stores    []fleetStore // fleetgen's stores, in order
	removed   map[string]bool
	quotawarn int
	imapBase  int
}

type fleetStore struct {
	name, line string
	slots      []string // master, replica
}

// storeLine is one store of fleetgen's stores.cue.
var storeLine = regexp.MustCompile(`^\t(store[0-9]+): \{master: "(slot[0-9]+)", replicas: \["(slot[0-9]+)"\]`)

func newKillFleet(t *testing.T, hosts, slotsPerHost int) *killFleet {
	t.Helper()
	files, err := fleetgen.Generate(fleetgen.Options{Hosts: hosts, SlotsPerHost: slotsPerHost})
	if err != nil {
		t.Fatal(err)
	}
	f := &killFleet{dir: t.TempDir(), fleetCUE: files["fleet.cue"], removed: map[string]bool{}, quotawarn: 60, imapBase: 14300}
	for _, line := range strings.Split(string(files["stores.cue"]), "\n") {
		if m := storeLine.FindStringSubmatch(line); m != nil {
			f.stores = append(f.stores, fleetStore{name: m[1], line: line, slots: []string{m[2], m[3]}})
		}
	}
	if len(f.stores) != hosts*slotsPerHost/2 {
		t.Fatalf("read %d stores from fleetgen's stores.cue, want %d: has its format changed?", len(f.stores), hosts*slotsPerHost/2)
	}
	f.write(t)
	return f
}

// write writes the layout: fleetgen's fleet.cue, the stores not removed,
// and kill.cue with the option and the port base the loop changes.
func (f *killFleet) write(t *testing.T) {
	t.Helper()
	var s strings.Builder
	s.WriteString("package layout\n\nstores: {\n")
	for _, st := range f.stores {
		if !f.removed[st.name] {
			s.WriteString(st.line + "\n")
		}
	}
	s.WriteString("}\n")
	kill := fmt.Sprintf("package layout\n\nimapd: quotawarn: %d\nports: imap: %d\n", f.quotawarn, f.imapBase)
	for name, data := range map[string][]byte{"fleet.cue": f.fleetCUE, "stores.cue": []byte(s.String()), "kill.cue": []byte(kill)} {
		if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// slots returns the layout's slots by host (fleetgen names host number i
// imap<i>, and a slot is slot<host number><two-digit partition>).
func (f *killFleet) slots() map[string][]string {
	out := map[string][]string{}
	for _, st := range f.stores {
		if f.removed[st.name] {
			continue
		}
		for _, s := range st.slots {
			h := slotHost(s)
			out[h] = append(out[h], s)
		}
	}
	for h := range out {
		slices.Sort(out[h])
	}
	return out
}

func slotHost(slot string) string { return "imap" + slot[len("slot"):len(slot)-2] }

// slotConf is what a slot's Cyrus runs with, as far as the kill loop
// tracks it: the hashes of its imapd.conf (a change needs a reload) and
// init script (a change needs a restart); "" for a missing file.
type slotConf struct{ imapd, init string }

func hashFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// diskConf reads slot's files as they are on its host under root.
func diskConf(root, slot string) slotConf {
	h := filepath.Join(root, slotHost(slot))
	return slotConf{
		imapd: hashFile(filepath.Join(h, "etc/cyrus", slot, "imapd.conf")),
		init:  hashFile(filepath.Join(h, "etc/init.d", "cyrus-"+slot)),
	}
}

// services models the Cyrus masters of a --root fleet, where apply runs
// no command but logs each action it would run: which slots run, and
// with which files. A start or restart loads a slot's files as they are
// on the host, a reload its imapd.conf, a stop ends it.
type services struct {
	root    string
	running map[string]slotConf
}

// ran updates the model with the actions an apply logged. A slot's files
// are all written before its action, and not again by the same apply, so
// the files on the host once the apply has ended are what it acted on.
func (s *services) ran(acts []loggedAction) {
	for _, a := range acts {
		switch a.verb {
		case "start", "restart":
			s.running[a.slot] = diskConf(s.root, a.slot)
		case "reload":
			if c, ok := s.running[a.slot]; ok {
				c.imapd = diskConf(s.root, a.slot).imapd
				s.running[a.slot] = c
			}
		case "stop":
			delete(s.running, a.slot)
		}
	}
}

// resync takes every slot of the layout to run with the files on its
// host, and no other slot to run: where a failed iteration leaves the
// model, so that the next one starts afresh.
func (s *services) resync(inLayout map[string]bool) {
	clear(s.running)
	for slot := range inLayout {
		s.running[slot] = diskConf(s.root, slot)
	}
}

// need says what slot, which the layout has, needs so that it runs with
// the files on its host: "" nothing, or start, restart or reload.
func (s *services) need(slot string) (need string, running bool) {
	c, running := s.running[slot]
	d := diskConf(s.root, slot)
	switch {
	case !running:
		return "start", false
	case c.init != d.init:
		return "restart", true
	case c.imapd != d.imapd:
		return "reload", true
	}
	return "", true
}

// TestKillLoopLocal kills `cyrplan apply --root` at random moments in a
// loop on a generated fleet of 600 slots (3,000 files), and checks after
// each kill that every start, reload, restart and stop the layout needs
// is still planned or pending, and after the apply that follows (not
// killed) that the hosts hold exactly the rendered tree, no temporary
// file, manifests that list exactly the layout's slots and no pending
// action, that every slot runs with the files on its host, and that a new
// plan is empty. It needs only the cyrplan binary: it runs everywhere.
func TestKillLoopLocal(t *testing.T) {
	const (
		hosts, slotsPerHost = 12, 50 // 600 slots, 3,000 files
		iterations          = 20
	)
	bin := buildCyrplan(t)
	seed := killSeed(t)
	t.Logf("seed %d (replay with CYRPLAN_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Setenv("CYRPLAN_SECRET_REPLICATION", killSecret)

	f := newKillFleet(t, hosts, slotsPerHost)
	root := filepath.Join(t.TempDir(), "hosts")
	scratch := t.TempDir() // fresh renders of the layout
	svc := &services{root: root, running: map[string]slotConf{}}
	common := []string{"--root", root, "--layout", f.dir}
	apply := append([]string{"apply", "--auto-approve", "--allow-dirty"}, common...)

	// The first apply starts every slot.
	r := runBin(t, bin, apply...)
	if r.code != 0 {
		t.Fatalf("first apply: exit %d\n%s%s", r.code, tail(r.stdout, 3000), r.stderr)
	}
	svc.ran(loggedActions(r.stdout))
	if len(svc.running) != hosts*slotsPerHost {
		t.Fatalf("the first apply logged the start of %d slots, want %d: has the log format changed?\n%s", len(svc.running), hosts*slotsPerHost, tail(r.stdout, 3000))
	}
	t.Logf("first apply (%d slots started): %s", len(svc.running), r.took.Round(time.Millisecond))

	// The apply of one option of every slot, timed: the kills fall
	// anywhere within this duration.
	f.quotawarn++
	f.write(t)
	r = runBin(t, bin, apply...)
	if r.code != 0 {
		t.Fatalf("apply of quotawarn %d: exit %d\n%s%s", f.quotawarn, r.code, tail(r.stdout, 3000), r.stderr)
	}
	svc.ran(loggedActions(r.stdout))
	window := r.took
	t.Logf("apply reloading every slot: %s; each kill falls within that", window.Round(time.Millisecond))

	failed, kills := 0, 0
	for it := 1; it <= iterations; it++ {
		// Always an option of every slot (reloads); every third
		// iteration the port base too (restarts); every fourth, starting
		// with the second, three stores go (stops and file deletions),
		// and two iterations later they come back (starts).
		f.quotawarn++
		change := fmt.Sprintf("quotawarn %d", f.quotawarn)
		if it%3 == 0 {
			f.imapBase = 14300 + 1000 - (f.imapBase - 14300)
			change += fmt.Sprintf(", imap port base %d", f.imapBase)
		}
		switch it % 4 {
		case 2:
			var present []string
			for _, st := range f.stores {
				if !f.removed[st.name] {
					present = append(present, st.name)
				}
			}
			var gone []string
			for _, i := range rng.Perm(len(present))[:3] {
				f.removed[present[i]] = true
				gone = append(gone, present[i])
			}
			slices.Sort(gone)
			change += ", stores removed: " + strings.Join(gone, " ")
		case 0:
			if len(f.removed) > 0 {
				change += ", stores back: " + strings.Join(slices.Sorted(maps.Keys(f.removed)), " ")
				clear(f.removed)
			}
		}
		f.write(t)
		header := fmt.Sprintf("iteration %d (%s)", it, change)

		// Mostly at a random moment; in the iterations that restart
		// every slot, right after one of the files it writes (all four
		// of most slots change; it writes at least three per slot), so
		// that the file phase is hit often, init scripts included.
		var at killAt
		var when string
		if it%3 == 0 {
			n := 1 + rng.IntN(3*hosts*slotsPerHost)
			at = killAt{line: nthLine(fileLine, n), after: 2 * window}
			when = fmt.Sprintf("after file %d", n)
		} else {
			at.after = time.Duration(rng.Int64N(int64(window)))
			when = fmt.Sprintf("%s after its start", at.after.Round(time.Millisecond))
		}
		header += ", killed " + when
		r := runBinKilled(t, bin, at, apply...)
		acts := loggedActions(r.stdout)
		svc.ran(acts)
		switch {
		case r.killed:
			kills++
			t.Logf("%s: killed after %s; it had logged %d actions", header, r.took.Round(time.Millisecond), len(acts))
		case r.code == 0:
			t.Logf("%s: the apply was done (%s) before the kill", header, r.took.Round(time.Millisecond))
		default:
			t.Fatalf("%s: the apply to be killed exited %d by itself\n%s%s", header, r.code, tail(r.stdout, 3000), r.stderr)
		}
		want := f.slots()
		inLayout := map[string]bool{}
		for _, list := range want {
			for _, s := range list {
				inLayout[s] = true
			}
		}

		var bad problems
		p := checkAfterKill(t, bin, common, root, want, svc, &bad)
		checkApplyAfterKill(t, bin, apply, p, inLayout, svc, &bad)
		checkConverged(t, bin, common, f.dir, root, filepath.Join(scratch, fmt.Sprint(it)), want, &bad)
		if bad.empty() {
			continue
		}
		failed++
		t.Errorf("%s (seed %d):%s", header, seed, bad.String())
		// Go on from where the hosts are, so that the next iterations
		// show what else goes wrong: the slots are taken to run with
		// their files, and the temporary files are cleared away.
		svc.resync(inLayout)
		tmps, _ := tmpFiles(root)
		for _, p := range tmps {
			os.Remove(p)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d iterations went wrong (seed %d)", failed, iterations, seed)
	}
	if kills == 0 {
		t.Errorf("no apply was killed: every one ended before its kill, so nothing was tested")
	}
}

// checkAfterKill checks, right after a kill, that whatever a slot needs
// to run with the files now on its host is still to be done: in the plan,
// or pending in its host's manifest. It returns the plan.
func checkAfterKill(t *testing.T, bin string, common []string, root string, want map[string][]string, svc *services, bad *problems) *planDoc {
	t.Helper()
	pr := runBin(t, bin, append([]string{"plan", "--json"}, common...)...)
	if pr.code != 0 {
		t.Fatalf("plan --json after the kill: exit %d\n%s", pr.code, pr.stderr)
	}
	p, err := parsePlan(pr.stdout)
	if err != nil {
		t.Fatal(err)
	}
	planned := p.actionsBySlot()
	inLayout := map[string]bool{}
	for _, host := range slices.Sorted(maps.Keys(want)) {
		m, _, err := readManifestFile(filepath.Join(root, host, "var/lib/cyrplan/manifest.json"))
		if err != nil {
			bad.add("unreadable manifest after the kill", "%s: %v", host, err)
		}
		for _, slot := range want[host] {
			inLayout[slot] = true
			need, running := svc.need(slot)
			if need == "" || satisfies(planned[slot], need, running) || satisfies(m.Pending[slot], need, running) {
				continue
			}
			bad.add("LOST after the kill: a slot's files changed since it last (re)loaded them, and neither the plan nor the manifest's pending has the action it needs",
				"%s on %s needs a %s; the plan has %q, the manifest pending %q", slot, host, need, planned[slot], m.Pending[slot])
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(svc.running)) {
		if !inLayout[slot] && planned[slot] != "stop" {
			bad.add("LOST after the kill: a slot no longer in the layout still runs, and the plan does not stop it",
				"%s on %s: the plan has %q", slot, slotHost(slot), planned[slot])
		}
	}
	return p
}

// checkApplyAfterKill runs the apply that follows a kill (not killed): it
// must succeed, run what the plan had, and leave every slot of the layout
// running with the files on its host and no other slot running.
func checkApplyAfterKill(t *testing.T, bin string, apply []string, p *planDoc, inLayout map[string]bool, svc *services, bad *problems) {
	t.Helper()
	r := runBin(t, bin, apply...)
	if r.code != 0 {
		bad.add("the apply after the kill failed", "exit %d\n%s%s", r.code, tail(r.stdout, 2000), r.stderr)
	}
	acts := loggedActions(r.stdout)
	svc.ran(acts)
	did := map[string]bool{}
	for _, a := range acts {
		did[a.slot] = true
	}
	if r.code == 0 {
		for _, a := range p.Actions {
			if !did[a.Slot] {
				bad.add("an action of the plan is not in the apply's log (has the log format changed?)", "%s of %s on %s", a.Verb, a.Slot, a.Host)
			}
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(inLayout)) {
		if need, _ := svc.need(slot); need != "" {
			bad.add("after the apply that follows the kill, a slot does not run with the files on its host", "%s on %s still needs a %s", slot, slotHost(slot), need)
		}
	}
	for _, slot := range slices.Sorted(maps.Keys(svc.running)) {
		if !inLayout[slot] {
			bad.add("after the apply that follows the kill, a slot no longer in the layout still runs", "%s on %s was never stopped", slot, slotHost(slot))
		}
	}
}

// checkConverged checks the hosts after an apply: they hold exactly the
// rendered tree (a fresh render of the layout into dir), no temporary
// file, manifests that list exactly the layout's slots of each host and
// no pending action, and a new plan is empty.
func checkConverged(t *testing.T, bin string, common []string, layoutDir, root, dir string, want map[string][]string, bad *problems) {
	t.Helper()
	if rr := runBin(t, bin, "render", "--layout", layoutDir, "--out", dir); rr.code != 0 {
		t.Fatalf("render: exit %d\n%s", rr.code, rr.stderr)
	}
	defer os.RemoveAll(dir)
	for _, host := range slices.Sorted(maps.Keys(want)) {
		diffs, err := compareTree(filepath.Join(root, host), filepath.Join(dir, host), map[string]string{"<<secret:replication>>": killSecret})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			bad.add("a host's files are not the rendered tree", "%s:%s", host, d)
		}
		m, ok, err := readManifestFile(filepath.Join(root, host, "var/lib/cyrplan/manifest.json"))
		switch {
		case err != nil:
			bad.add("unreadable manifest", "%s: %v", host, err)
		case !ok:
			bad.add("no manifest", "%s", host)
		default:
			if got := slices.Sorted(slices.Values(m.Slots)); !slices.Equal(got, want[host]) {
				bad.add("a manifest does not list exactly the layout's slots of its host", "%s: %s", host, slotDiff(got, want[host]))
			}
			if len(m.Pending) > 0 {
				bad.add("a manifest still has pending actions", "%s: %v", host, m.Pending)
			}
		}
	}
	tmps, err := tmpFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tmps {
		rel, _ := filepath.Rel(root, p)
		bad.add("temporary files left behind", "%s", rel)
	}
	if pr := runBin(t, bin, append([]string{"plan", "--detailed-exitcode"}, common...)...); pr.code != 0 {
		bad.add("the plan after the apply is not empty", "exit %d, want 0\n%s%s", pr.code, tail(pr.stdout, 2000), pr.stderr)
	}
}

// slotDiff describes how the slots got differ from want.
func slotDiff(got, want []string) string {
	var extra, missing []string
	for _, s := range got {
		if !slices.Contains(want, s) {
			extra = append(extra, s)
		}
	}
	for _, s := range want {
		if !slices.Contains(got, s) {
			missing = append(missing, s)
		}
	}
	return fmt.Sprintf("%d slots (not in the layout: %v; missing: %v)", len(got), extra, missing)
}

// cyrusKill is the layout of newWorld that TestKillApplyRealCyrus
// changes: an imapd.conf option of every slot (a reload) and the IMAP
// port of some slots (their init script changes: a restart).
type cyrusKill struct {
	w         *world
	quotawarn int
	moved     map[string]bool // slots on port 15300+partition instead of 14300+partition
}

func (k *cyrusKill) port(slot string) int {
	if k.moved[slot] {
		return 15300 + slots[slot].part
	}
	return 14300 + slots[slot].part
}

func (k *cyrusKill) write() {
	var b strings.Builder
	fmt.Fprintf(&b, "imapd: quotawarn: %d\nslots: {\n", k.quotawarn)
	for _, s := range slices.Sorted(maps.Keys(k.moved)) {
		if k.moved[s] {
			fmt.Fprintf(&b, "\t%s: ports: imap: %d\n", s, k.port(s))
		}
	}
	b.WriteString("}\n")
	k.w.params.Extras = b.String()
	k.w.writeLayout()
}

// change changes the option (every slot reloads) and moves two or three
// slots to the other port (they restart), and says what it did.
func (k *cyrusKill) change(rng *rand.Rand) string {
	k.quotawarn++
	names := slices.Sorted(maps.Keys(slots))
	var restart []string
	for _, i := range rng.Perm(len(names))[:2+rng.IntN(2)] {
		k.moved[names[i]] = !k.moved[names[i]]
		restart = append(restart, fmt.Sprintf("%s to port %d", names[i], k.port(names[i])))
	}
	slices.Sort(restart)
	k.write()
	return fmt.Sprintf("quotawarn %d; %s", k.quotawarn, strings.Join(restart, ", "))
}

// TestKillApplyRealCyrus kills cyrplan apply at random moments on real
// hosts running real Cyrus (between two file writes, during a restart,
// or at any moment), each time after a change that reloads every slot
// and restarts a few, and runs apply again at once. That apply must
// succeed, and then every slot must run exactly one master (the one its
// pidfile names), started after its init script was last written, with
// no imapd child older than its imapd.conf (the reload, or restart, that
// the new file needs was not lost), answering with its banner on its
// port, and a new plan must be empty.
func TestKillApplyRealCyrus(t *testing.T) {
	const iterations = 7
	w := newWorld(t)
	bin := buildCyrplan(t)
	seed := killSeed(t)
	t.Logf("seed %d (replay with CYRPLAN_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	hostArgs := []string{"--layout", w.layout, "--known-hosts", w.fleet.KnownHosts, "--identity", w.fleet.Identity}
	apply := append([]string{"apply", "--auto-approve", "--allow-dirty"}, hostArgs...)
	k := &cyrusKill{w: w, quotawarn: 80, moved: map[string]bool{}}
	k.write()

	r := runBin(t, bin, apply...)
	if r.code != 0 {
		t.Fatalf("first apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var bad problems
	checkCyrusSlots(t, w, k, bin, hostArgs, &bad)
	if !bad.empty() {
		t.Fatalf("after the first apply:%s", bad.String())
	}

	// One change applied without a kill, timed: the kills at a random
	// moment fall within this duration.
	change := k.change(rng)
	r = runBin(t, bin, apply...)
	if r.code != 0 {
		t.Fatalf("apply of %s: exit %d\n%s%s", change, r.code, r.stdout, r.stderr)
	}
	window := r.took
	t.Logf("apply of %s (not killed): %s", change, window.Round(time.Millisecond))
	checkCyrusSlots(t, w, k, bin, hostArgs, &bad)
	if !bad.empty() {
		t.Fatalf("after the apply of %s:%s", change, bad.String())
	}

	kills := 0
	for it := 1; it <= iterations; it++ {
		change := k.change(rng)
		// What the apply will do, to choose when to kill it.
		pr := runBin(t, bin, append([]string{"plan", "--json"}, hostArgs...)...)
		if pr.code != 0 {
			t.Fatalf("plan --json: exit %d\n%s", pr.code, pr.stderr)
		}
		p, err := parsePlan(pr.stdout)
		if err != nil {
			t.Fatal(err)
		}
		files := 0
		for _, h := range p.Hosts {
			files += len(h.Files)
		}
		var at killAt
		var when string
		restarts := []int{}
		for i, a := range p.Actions {
			if a.Verb == "restart" {
				restarts = append(restarts, i)
			}
		}
		switch {
		case it%3 == 2 && files > 1:
			// Right after the n-th file written (before the next rename).
			n := 1 + rng.IntN(files-1)
			at = killAt{line: nthLine(fileLine, n)}
			when = fmt.Sprintf("after file %d of %d", n, files)
		case it%3 == 0 && len(restarts) > 0:
			// During a restart: a moment after the action before it was
			// logged (or, for the first action, the last file).
			i := restarts[rng.IntN(len(restarts))]
			extra := time.Duration(rng.Int64N(int64(600 * time.Millisecond)))
			if i == 0 {
				at = killAt{line: nthLine(fileLine, files), extra: extra}
			} else {
				prev := p.Actions[i-1]
				at = killAt{line: func(l string) bool {
					m := actionLine.FindStringSubmatch(l)
					return m != nil && m[2] == prev.Slot
				}, extra: extra}
			}
			when = fmt.Sprintf("%s into the restart of %s (action %d of %d)", extra.Round(time.Millisecond), p.Actions[i].Slot, i+1, len(p.Actions))
		default:
			at.after = time.Duration(rng.Int64N(int64(window)))
			when = fmt.Sprintf("%s after its start", at.after.Round(time.Millisecond))
		}
		if at.after == 0 {
			at.after = 2 * window // a line that never comes: kill anyway
		}
		header := fmt.Sprintf("iteration %d (%s), killed %s", it, change, when)

		r := runBinKilled(t, bin, at, apply...)
		if r.killed {
			kills++
			t.Logf("%s: killed after %s; the last it said (an action is logged once done):\n%s", header, r.took.Round(time.Millisecond), tail(r.stdout, 400))
		} else {
			t.Logf("%s: not killed, it ended first (exit %d, %s)", header, r.code, r.took.Round(time.Millisecond))
			window = max(window, r.took) // restarts of masters take longer than those of replicas
		}

		// At once, the apply again: it must succeed.
		r = runBin(t, bin, apply...)
		if r.code != 0 {
			bad.add("the apply right after the kill failed", "exit %d\n%s%s", r.code, tail(r.stdout, 3000), r.stderr)
		}
		checkCyrusSlots(t, w, k, bin, hostArgs, &bad)
		if !bad.empty() {
			t.Fatalf("%s (seed %d):%s", header, seed, bad.String())
		}
	}
	if kills == 0 {
		t.Fatalf("no apply was killed: every one ended before its kill, so nothing was tested")
	}
}

// checkCyrusSlots waits until no init script runs on any host (one that a
// killed apply started may still run), then checks every slot of the
// layout until all is well or a safety timeout passes: one master, named
// by the pidfile, started after the slot's init script was written; no
// imapd child older than its imapd.conf (idle children exit on the
// reload's SIGHUP, a moment after it); its banner on its port. Then a
// plan must be empty.
func checkCyrusSlots(t *testing.T, w *world, k *cyrusKill, bin string, hostArgs []string, bad *problems) {
	t.Helper()
	hosts := map[string]bool{}
	for _, s := range slots {
		hosts[s.host] = true
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var running []string
		for _, hn := range slices.Sorted(maps.Keys(hosts)) {
			procs, err := hostProcs(w.fleet.Host(hn))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range procs {
				if strings.Contains(p.cmdline(), "/etc/init.d/cyrus-") {
					running = append(running, fmt.Sprintf("%s: pid %d %s", hn, p.nspid, p.cmdline()))
				}
			}
		}
		if len(running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			bad.add("init scripts still running 2 minutes after the apply", "%s", strings.Join(running, "\n"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}

	var last problems
	var seen []string
	deadline = time.Now().Add(15 * time.Second)
	for {
		last, seen = problems{}, nil
		for _, name := range slices.Sorted(maps.Keys(slots)) {
			checkCyrusSlot(t, w, k, name, &last, &seen)
		}
		if last.empty() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("slots:\n  %s", strings.Join(seen, "\n  "))
	for _, kind := range last.kinds {
		for _, x := range last.byKind[kind] {
			bad.add(kind, "%s", x)
		}
	}
	if pr := runBin(t, bin, append([]string{"plan", "--detailed-exitcode"}, hostArgs...)...); pr.code != 0 {
		bad.add("the plan after the apply is not empty", "exit %d, want 0\n%s%s", pr.code, tail(pr.stdout, 3000), pr.stderr)
	}
}

func checkCyrusSlot(t *testing.T, w *world, k *cyrusKill, name string, bad *problems, seen *[]string) {
	t.Helper()
	s := slots[name]
	h := w.fleet.Host(s.host)
	procs, err := hostProcs(h)
	if err != nil {
		t.Fatal(err)
	}
	mtime := func(p string) time.Time {
		fi, err := os.Stat(h.Path(p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	confTime := mtime("/etc/cyrus/" + name + "/imapd.conf")
	initTime := mtime("/etc/init.d/cyrus-" + name)
	// older: a process started before t, by more than the resolution of
	// its start time.
	older := func(p hostProc, t time.Time) bool { return p.start.Add(clockTick).Before(t) }
	clock := func(t time.Time) string { return t.Format("15:04:05.000") }

	var masters []hostProc
	for _, p := range procs {
		if p.name() == "master" && strings.Contains(p.cmdline(), "-p /run/cyrus-"+name+".pid") {
			masters = append(masters, p)
		}
	}
	desc := fmt.Sprintf("%s on %s: imapd.conf written %s, init script %s;", name, s.host, clock(confTime), clock(initTime))
	for _, m := range masters {
		var kids []string
		for _, c := range procs {
			if c.ppid != m.pid {
				continue
			}
			kids = append(kids, fmt.Sprintf("%s %d (%s)", c.name(), c.nspid, clock(c.start)))
			if c.name() == "imapd" && older(c, confTime) {
				bad.add("a slot does not serve its imapd.conf: an imapd child is older than the file (its reload was lost, or not done)",
					"%s: imapd %d started %s, imapd.conf written %s", name, c.nspid, clock(c.start), clock(confTime))
			}
		}
		desc += fmt.Sprintf(" master %d (%s) with %s", m.nspid, clock(m.start), strings.Join(kids, ", "))
		if older(m, initTime) {
			bad.add("a slot does not run its init script: its master is older than the file (its restart was lost, or not done)",
				"%s: master %d started %s, init script written %s", name, m.nspid, clock(m.start), clock(initTime))
		}
	}
	*seen = append(*seen, desc)
	if len(masters) != 1 {
		var list []string
		for _, m := range masters {
			list = append(list, fmt.Sprintf("%d (%s)", m.nspid, m.cmdline()))
		}
		bad.add("not exactly one master per slot", "%s: %d masters %v", name, len(masters), list)
	}
	if data, err := os.ReadFile(h.Path("/run/cyrus-" + name + ".pid")); err != nil {
		bad.add("pidfile", "%s: %v", name, err)
	} else if len(masters) == 1 && strings.TrimSpace(string(data)) != strconv.Itoa(masters[0].nspid) {
		bad.add("the pidfile does not name the slot's master", "%s: pidfile says %q, the master is %d", name, strings.TrimSpace(string(data)), masters[0].nspid)
	}
	addr := fmt.Sprintf("%s:%d", h.Addr, k.port(name))
	if err := health.Banner(ctxTimeout(t, 5*time.Second), addr, name); err != nil {
		bad.add("no banner", "%s on %s: %v", name, addr, err)
	}
}
