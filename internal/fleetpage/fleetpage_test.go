package fleetpage

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cyrplan/cyrplan/internal/report"
	"github.com/cyrplan/cyrplan/internal/report/reporttest"
)

func write(t *testing.T, s *report.Status, opts Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, s, opts); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestExample: the page of the example fleet shows every host, slot and
// store, the store running backwards as status says it, the level, the
// legend and every problem.
func TestExample(t *testing.T) {
	st := reporttest.Example(t)
	page := write(t, st, Options{})
	for _, h := range st.Hosts {
		if !strings.Contains(page, `data-host="`+h.Name+`"`) {
			t.Errorf("no column for host %s", h.Name)
		}
		for _, sn := range h.Slots {
			if !strings.Contains(page, `data-slot="`+sn+`"`) {
				t.Errorf("no box for slot %s of %s", sn, h.Name)
			}
		}
	}
	for _, s := range st.Stores {
		if n := strings.Count(page, `data-store="`+s.Store+`"`); n < 2+len(s.Slots) {
			// Its boxes, its wires, its row.
			t.Errorf("store %s is drawn %d times, want at least %d", s.Store, n, 2+len(s.Slots))
		}
	}
	text := html.UnescapeString(page)
	for _, want := range []string{
		"store13 slot405 => slot703",
		`id="moved"`, `id="legend"`, `id="level" data-level="critical"`, ">CRITICAL<",
		"2026-12-01 09:30:00 UTC", ">4f5e6d7<",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	for _, h := range st.Hosts {
		for to, n := range h.FailoverTo {
			if want := fmt.Sprintf("%s ×%d", to, n); !strings.Contains(text, want) {
				t.Errorf("the column of %s does not say it fails over to %q", h.Name, want)
			}
		}
	}
	for _, p := range st.Problems {
		if !strings.Contains(text, p.What) {
			t.Errorf("the page does not list the problem %q", p)
		}
	}
	if got := regexp.MustCompile(`<[^>]*data-store="store13"[^>]*>`).FindAllString(page, -1); len(got) < 4 {
		t.Errorf("store13 is drawn %d times, want its two boxes, its wire, its row and its moved line", len(got))
	} else {
		for _, el := range got {
			if !strings.Contains(el, "moved") {
				t.Errorf("store13 runs backwards, but %s is not highlighted", el)
			}
		}
	}
	if strings.Contains(page, "http-equiv") {
		t.Error("a page without Refresh reloads itself")
	}
}

// TestSelfContained: the page loads nothing: no script, image, style
// sheet, font or address of any kind. Its one link is its favicon, a
// data: URL, which is there so that browsers do not ask for
// /favicon.ico.
func TestSelfContained(t *testing.T) {
	page := write(t, reporttest.Example(t), Options{Refresh: time.Minute})
	icon := regexp.MustCompile(`<link rel="icon" href="data:image/png;base64,(?:[A-Za-z0-9/=]|&#43;)+">`)
	if n := len(regexp.MustCompile(`<link`).FindAllString(page, -1)); n != 1 || len(icon.FindAllString(page, -1)) != 1 {
		t.Errorf("%d links, want only a data: favicon", n)
	}
	page = icon.ReplaceAllString(page, "")
	for _, m := range regexp.MustCompile(`(?i)(?:src|href|srcset|data|action|poster|xlink:href)\s*=\s*["']?([^"' >]*)`).FindAllStringSubmatch(page, -1) {
		t.Errorf("the page refers to %q", m[0])
	}
	for _, bad := range []string{"http://", "https://", "<script", "<img", "<iframe", "<object", "<embed", "url(", "@import", "@font-face", "//"} {
		if i := strings.Index(page, bad); i >= 0 {
			t.Errorf("the page holds %q: …%s…", bad, page[max(0, i-60):min(len(page), i+60)])
		}
	}
}

// TestEscape: names from a hostile layout are text, never markup, in
// every context the page puts them: text, attributes, CSS.
func TestEscape(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	st := &report.Status{Time: reporttest.Time, Level: report.Critical,
		Problems: []report.Problem{{Level: report.Critical, Store: evil, Slot: evil + "1", What: evil}},
		Moved:    []report.Moved{{Store: evil, From: evil + "1", To: evil + "2"}},
		Hosts: []report.Host{{Name: evil, Address: `"><i onmouseover=alert(2)>`, Slots: []string{evil + "1", evil + "2"},
			Masters: 1, Preferred: 1, FailoverTo: map[string]int{evil: 1}, Error: evil}},
		Stores: []report.Store{{Store: evil, Level: report.Critical, Preferred: evil + "1", Current: []string{evil + "2"},
			Replicas: []string{evil + "1"}, Cyrus: evil, Prefix: evil,
			Slots: []report.Slot{
				{Slot: evil + "1", Host: evil, Role: "replica", Health: evil, Error: evil},
				{Slot: evil + "2", Host: evil, Role: "master", Health: report.HealthOK, Running: evil},
			},
			Replication: []report.Replication{{Replica: evil + "1", Canary: &report.Canary{Error: evil}}},
		}},
	}
	page := write(t, st, Options{})
	for _, bad := range []string{"<script", "<i onmouseover"} {
		if strings.Contains(page, bad) {
			t.Errorf("a hostile name is markup: the page holds %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the hostile store name is not shown escaped")
	}
	if n := strings.Count(page, "</style>"); n != 1 {
		t.Errorf("the style sheet ends %d times", n)
	}
}

// TestRefresh: with Refresh, the page reloads itself that often.
func TestRefresh(t *testing.T) {
	page := write(t, reporttest.Example(t), Options{Refresh: 30 * time.Second})
	if !strings.Contains(page, `<meta http-equiv="refresh" content="30">`) {
		t.Error("no meta refresh of 30 seconds")
	}
	if !strings.Contains(page, "reloads every 30s") {
		t.Error("the page does not say that it reloads")
	}
}

// TestOdd: a report with everything that can go wrong, and a fleet read
// from a --root directory, draw without error and say so.
func TestOdd(t *testing.T) {
	no := false
	at := reporttest.Time
	st := &report.Status{Time: at, Local: true, Level: report.Critical,
		Problems: []report.Problem{
			{Level: report.Critical, Host: "h1", What: "not answering: ssh: connection refused"},
			{Level: report.Critical, Store: "s1", What: "2 masters: [a1 b1]"},
			{Level: report.Critical, Store: "s2", What: "no master"},
		},
		Hosts: []report.Host{
			{Name: "h1", Address: "10.0.0.1", Error: "ssh: connection refused", Slots: []string{"a1", "a2"}},
			{Name: "h2", Address: "10.0.0.2", Applied: report.NeverApplied, Slots: []string{"b1", "b2"}, FailoverTo: map[string]int{"h1": 1, "h9": 2}},
			{Name: "h4", Address: "10.0.0.4", Applied: "0123456789"},
		},
		Stores: []report.Store{
			{Store: "s1", Preferred: "a1", Current: []string{"a1", "b1"}, Slots: []report.Slot{
				{Slot: "a1", Host: "h1", Role: "master", Health: "host down", Error: "ssh: connection refused"},
				{Slot: "b1", Host: "h2", Role: "master", Health: report.HealthUnknown, Drift: 2},
			}},
			{Store: "s2", Preferred: "b2", Prefix: "/usr/lib/cyrus", Slots: []report.Slot{
				{Slot: "b2", Host: "h2", Health: report.HealthUnknown},
				{Slot: "a2", Host: "h1", Health: report.HealthUnknown},
				{Slot: "c1", Host: "h3", Role: "replica", Health: report.HealthOK, Running: "/opt/other/bin/master"},
			}},
			{Store: "s3", Preferred: "c2", Current: []string{"c2"}, Prefix: "/usr/lib/cyrus", Slots: []report.Slot{
				{Slot: "c2", Host: "h3", Role: "master", Health: report.HealthOK, Running: "/usr/lib/cyrus/bin/master"},
				{Slot: "c3", Host: "h3", Role: "replica", Health: report.HealthOK},
			},
				Replication: []report.Replication{{Replica: "c3", Backlog: 3, BacklogAge: 7300, BacklogAgeBound: true, SyncClient: &no,
					Canary: &report.Canary{SentAt: at.Add(-50 * time.Hour), Seconds: 12}}},
				Verify: &report.Verify{At: at.Add(-72 * time.Hour), Master: "c2", Mailboxes: 9, Replicas: []report.Comparison{
					{Replica: "c3", Divergent: []report.Mailbox{{Name: "user.bron", What: []string{"messages 5 != 4"}, Missing: 1}}}}}},
		},
	}
	text := html.UnescapeString(write(t, st, Options{}))
	for _, want := range []string{
		"--root", "not answering: ssh: connection refused", "never applied", "applied 0123456, not the layout's",
		"s1 · 2 masters", "s2 · no master", "other build", "sync_client ✗", "3 waiting · ≥2h01m", "verify ✗",
		"1 mailbox differs", "2026-11-28 09:30 UTC", "h1 ×1, h9 ×2", `data-host="h3"`, "uncertain", "not in git",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}

// TestEmpty: a report of nothing is a page that says so.
func TestEmpty(t *testing.T) {
	text := write(t, &report.Status{}, Options{})
	for _, want := range []string{">OK<", "Nothing to report", "Read</dt><dd>unknown<"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}

// TestShort: durations read in at most two units.
func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 10 * time.Minute: "10m", 10*time.Minute + 5*time.Second: "10m05s",
		2*time.Hour + 5*time.Minute: "2h05m", 76 * time.Hour: "3d04h",
	} {
		if got := short(d); got != want {
			t.Errorf("short(%v) = %q, want %q", d, got, want)
		}
	}
}
