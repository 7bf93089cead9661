package fleetpage

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/report/reporttest"
)

// chromium is Debian's chromium package.
const chromium = "/usr/bin/chromium"

// facts is what the browser test reads from the page's DOM and layout,
// in CSS pixels of a 1440x900 window.
type facts struct {
	Hosts   []string   `json:"hosts"`
	Slots   []slotFact `json:"slots"`
	Stores  []string   `json:"stores"`
	Store13 []struct {
		Tag   string
		Moved bool
	} `json:"store13"`
	Moved  string `json:"moved"`
	Level  string `json:"level"`
	Legend bool   `json:"legend"`
	Wires  []struct {
		Store, From, To string
		X, Y            float64 // the middle of its arrowhead
	} `json:"wires"`
	Crossings   []string `json:"crossings"`   // wires that run over a box
	ScrollWidth int      `json:"scrollWidth"` // of the whole page
}

// slotFact is one slot box: its data attributes, where it is and where
// its column is, whether its text fits, and its box-shadow (the moved
// highlight).
type slotFact struct {
	Slot, Store, Role, Health, Host string
	Moved                           bool
	Left, Right, Top, Bottom        float64
	HostLeft, HostRight             float64
	Clipped, Overflows              bool
	Shadow                          string
}

// readFacts runs in the page; its fields are those of facts.
const readFacts = `(() => {
  const r = e => e.getBoundingClientRect();
  const boxes = [...document.querySelectorAll('.slot')];
  const crossings = [];
  for (const g of document.querySelectorAll('.wire')) {
    const p = g.querySelector('.w'), m = p.getScreenCTM(), len = p.getTotalLength();
    outer: for (let d = 0; d <= len; d += 2) {
      const pt = p.getPointAtLength(d), x = pt.x * m.a + m.e, y = pt.y * m.d + m.f;
      for (const b of boxes) {
        const q = r(b);
        if (x > q.left + 1 && x < q.right - 1 && y > q.top + 1 && y < q.bottom - 1) {
          crossings.push(g.dataset.store + ' ' + g.dataset.from + ' → ' + g.dataset.to + ' over ' + b.dataset.slot);
          break outer;
        }
      }
    }
  }
  return {
    hosts: [...document.querySelectorAll('section.host[data-host]')].map(e => e.dataset.host),
    slots: boxes.map(e => {
      const b = r(e), h = e.closest('[data-host]'), hb = r(h), name = r(e.querySelector('.name')), role = r(e.querySelector('.role')), l2 = e.querySelector('.l2');
      return {Slot: e.dataset.slot, Store: e.dataset.store || '', Role: e.dataset.role, Health: e.dataset.health, Host: h.dataset.host,
        Moved: e.classList.contains('moved'), Left: b.left, Right: b.right, Top: b.top, Bottom: b.bottom, HostLeft: hb.left, HostRight: hb.right,
        Clipped: name.right > role.left || role.right > b.right || l2.scrollWidth > l2.clientWidth,
        Overflows: e.scrollHeight > e.clientHeight + 1, Shadow: getComputedStyle(e).boxShadow};
    }),
    stores: [...new Set([...document.querySelectorAll('[data-store]')].map(e => e.dataset.store))],
    store13: [...document.querySelectorAll('[data-store="store13"]')].map(e => ({Tag: e.tagName.toLowerCase(), Moved: e.classList.contains('moved')})),
    moved: document.getElementById('moved')?.textContent ?? '',
    level: document.getElementById('level')?.textContent.trim() ?? '',
    legend: !!document.getElementById('legend'),
    wires: [...document.querySelectorAll('.wire')].map(g => {
      const b = r(g.querySelector('.h'));
      return {Store: g.dataset.store, From: g.dataset.from, To: g.dataset.to, X: (b.left + b.right) / 2, Y: (b.top + b.bottom) / 2};
    }),
    crossings,
    scrollWidth: document.documentElement.scrollWidth,
  };
})()`

// TestBrowser opens the example's page in headless Chromium at 1440x900,
// served from 127.0.0.1, and checks what an operator would see: every
// host, slot and store is drawn where it belongs; store13 is highlighted
// as running backwards; slot801 shows its problem; no wire runs over a
// box and every arrow ends at its replica; nothing is clipped or wider
// than the window. The page must log no console message, throw nothing
// and request nothing but itself. It writes a screenshot, fleet.png, to
// $CYRPLAN_ARTIFACTS (or the test's temporary directory) and, when
// CYRPLAN_README_SCREENSHOT names a file, there too (docs/fleet.png).
//
// It needs Debian's chromium; it skips without it, unless CYRPLAN_E2E=1.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CYRPLAN_E2E") == "1" {
			t.Fatalf("CYRPLAN_E2E=1 but %s is missing: apt-get install chromium", chromium)
		}
		t.Skipf("%s not installed (apt-get install chromium); set CYRPLAN_E2E=1 to require it", chromium)
	}
	st := reporttest.Example(t)
	var page bytes.Buffer
	if err := Write(&page, st, Options{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string // what the page should not have done
	var served []string
	seen := 0 // requests for the page that the browser reported: none means the check saw nothing
	complain := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		bad = append(bad, fmt.Sprintf(format, args...))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served = append(served, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page.Bytes())
	}))
	defer srv.Close()
	url := srv.URL + "/"

	// The deadline ends the browser too, so a hung one fails the test.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			complain("console.%s: %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			complain("exception: %s", text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				complain("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if ev.Request.URL != url {
				complain("request %s %s", ev.Request.Method, ev.Request.URL)
				return
			}
			mu.Lock()
			seen++
			mu.Unlock()
		}
	}))
	defer cancelTab()
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	f, err := chromedp.Run(bctx, chromedp.Evaluate[facts](readFacts))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveScreenshot(t, shot)

	// Pointing at a box of store13 lights its store up and fades the rest.
	if i := slices.IndexFunc(f.Slots, func(s slotFact) bool { return s.Slot == "slot405" }); i >= 0 {
		b := f.Slots[i]
		lit := `(() => {
		  const o = s => +getComputedStyle(document.querySelector(s)).opacity;
		  return o('[data-slot="slot703"]') === 1 && o('.wire[data-store="store13"]') === 1 && o('[data-slot="slot301"]') < .5 && o('.wire[data-store="store11"]') < .5;
		})()`
		if err := chromedp.Do(bctx, chromedp.MouseEvent(chromedp.MouseMoved, (b.Left+b.Right)/2, (b.Top+b.Bottom)/2)); err != nil {
			t.Fatal(err)
		}
		pctx, cancelPoll := context.WithTimeout(bctx, 5*time.Second)
		if _, err := chromedp.Run(pctx, chromedp.Poll[bool](lit)); err != nil {
			t.Errorf("pointing at slot405 does not light store13 up: %v", err)
		}
		cancelPoll()
	}
	cancelTab()
	cancelAlloc()

	checkFacts(t, st, &f)
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Errorf("the page should not have: %s", b)
	}
	if seen != 1 {
		t.Errorf("the browser reported %d requests for the page, want 1", seen)
	}
	if !slices.Equal(served, []string{"/"}) {
		t.Errorf("the server was asked for %q, want only the page", served)
	}
}

// checkFacts compares what the browser shows with the report.
func checkFacts(t *testing.T, st *report.Status, f *facts) {
	t.Helper()
	var hosts []string
	hostOf, roleOf, storeOf := map[string]string{}, map[string]string{}, map[string]string{}
	for _, h := range st.Hosts {
		hosts = append(hosts, h.Name)
		for _, sn := range h.Slots {
			hostOf[sn], roleOf[sn] = h.Name, roleSpare
		}
	}
	for _, s := range st.Stores {
		for _, sl := range s.Slots {
			hostOf[sl.Slot], roleOf[sl.Slot], storeOf[sl.Slot] = sl.Host, sl.Role, s.Store
		}
	}
	if !slices.Equal(f.Hosts, hosts) {
		t.Errorf("host columns %q, want %q", f.Hosts, hosts)
	}
	if len(f.Slots) != len(hostOf) {
		t.Errorf("%d slot boxes, want %d", len(f.Slots), len(hostOf))
	}
	for i, s := range f.Slots {
		switch {
		case hostOf[s.Slot] == "":
			t.Errorf("a box for %s, which the report does not have", s.Slot)
			continue
		case s.Host != hostOf[s.Slot] || s.Store != storeOf[s.Slot] || s.Role != roleOf[s.Slot]:
			t.Errorf("%s is drawn as the %s of %q on %s, want the %s of %q on %s", s.Slot, s.Role, s.Store, s.Host,
				roleOf[s.Slot], storeOf[s.Slot], hostOf[s.Slot])
		case s.Left < s.HostLeft || s.Right > s.HostRight:
			t.Errorf("the box of %s sticks out of the column of %s", s.Slot, s.Host)
		case s.Clipped || s.Overflows:
			t.Errorf("the text of %s does not fit its box", s.Slot)
		}
		if (s.Store == "store13") != s.Moved {
			t.Errorf("%s of %q: moved highlight %v", s.Slot, s.Store, s.Moved)
		}
		if s.Moved && (s.Shadow == "none" || s.Shadow == f.Slots[0].Shadow) {
			t.Errorf("%s is marked moved but does not look it (box-shadow %s)", s.Slot, s.Shadow)
		}
		for _, o := range f.Slots[:i] {
			if s.Left < o.Right && o.Left < s.Right && s.Top < o.Bottom && o.Top < s.Bottom {
				t.Errorf("the boxes of %s and %s overlap", o.Slot, s.Slot)
			}
		}
		want := healthOK
		switch s.Slot {
		case "slot801", "slot502", "slot901":
			want = healthProblem
		case "slot309":
			want = healthUnknown
		}
		if s.Health != want {
			t.Errorf("%s: data-health=%s, want %s", s.Slot, s.Health, want)
		}
	}
	for _, s := range st.Stores {
		if !slices.Contains(f.Stores, s.Store) {
			t.Errorf("store %s is not on the page", s.Store)
		}
	}
	tags := map[string]bool{}
	for _, e := range f.Store13 {
		tags[e.Tag] = true
		if !e.Moved {
			t.Errorf("a %s of store13 is not highlighted as moved", e.Tag)
		}
	}
	for _, tag := range []string{"div", "g", "tr", "li"} {
		if !tags[tag] {
			t.Errorf("store13 has no %s: want its boxes, wire, table row and moved line", tag)
		}
	}
	if !strings.Contains(f.Moved, "store13 slot405 => slot703") {
		t.Errorf("#moved says %q", f.Moved)
	}
	if f.Level != "CRITICAL" || !f.Legend {
		t.Errorf("level %q, legend %v", f.Level, f.Legend)
	}
	wires := 0
	for _, s := range st.Stores {
		wires += len(s.Replicas)
	}
	if len(f.Wires) != wires {
		t.Errorf("%d wires, want one per replica: %d", len(f.Wires), wires)
	}
	for _, w := range f.Wires {
		i := slices.IndexFunc(f.Slots, func(s slotFact) bool {
			return s.Slot == w.To
		})
		if i < 0 {
			t.Errorf("the wire %s → %s ends at no box", w.From, w.To)
			continue
		}
		b := f.Slots[i]
		if near := min(abs64(w.X-b.Left), abs64(w.X-b.Right)); near > arrowLen || w.Y < b.Top || w.Y > b.Bottom {
			t.Errorf("the arrow of %s → %s ends at (%.0f, %.0f), not at the side of %s (%.0f-%.0f × %.0f-%.0f)",
				w.From, w.To, w.X, w.Y, w.To, b.Left, b.Right, b.Top, b.Bottom)
		}
	}
	for _, c := range f.Crossings {
		t.Errorf("a wire runs over a box: %s", c)
	}
	if f.ScrollWidth > 1440 {
		t.Errorf("the page is %d px wide, wider than the 1440 px window", f.ScrollWidth)
	}
}

func abs64(f float64) float64 { return max(f, -f) }

// saveScreenshot writes the screenshot to $CYRPLAN_ARTIFACTS/fleet.png,
// or into the test's temporary directory, and to
// $CYRPLAN_README_SCREENSHOT when that is set.
func saveScreenshot(t *testing.T, png []byte) {
	t.Helper()
	dir := os.Getenv("CYRPLAN_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	paths := []string{filepath.Join(dir, "fleet.png")}
	if p := os.Getenv("CYRPLAN_README_SCREENSHOT"); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}
