// Package fleetpage draws what cyrplan status finds as one self-contained
// HTML page: cyrplan status --format html, and the page of cyrplan serve.
// The page needs nothing but itself: its style is inline CSS, its drawing
// inline SVG, it runs no script and loads no font, image or anything else,
// so it works offline and from a file.
//
// At the top, the report's level, when the hosts were read, the layout
// commit, the problems and the stores running backwards
// ("store13 slot405 => slot703"). Below, the fleet: one column per host
// with how many masters it holds now, how many it prefers and where those
// fail over to, and its slots as boxes coloured by role (master, replica,
// spare) and health, with badges for drift, replication backlog, the last
// canary and the last verify. Wires drawn between the boxes run from each
// store's master to its replicas; they keep to the gaps between columns
// and rows, so they never cross a box. Last, a table of the stores.
//
// The page's DOM is stable for tests and scrapers: host columns carry
// data-host; slot boxes data-slot, data-store (none for a spare),
// data-role (master, replica, spare or unknown) and data-health (ok,
// problem or unknown); wires and table rows data-store. Every element of
// a store running backwards has the class moved. The elements with the ids
// level, problems, moved, fleet, legend and stores hold what they say.
package fleetpage

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/report"
)

//go:embed page.html.tmpl
var pageText string

var page = template.Must(template.New("page").Parse(pageText))

// icons are the page's favicons by level: a disc of the level's colour,
// so that a browser tab shows how the fleet is. Having one also keeps the
// browser from asking the server for /favicon.ico.
var icons = map[report.Level]template.URL{
	report.OK:       disc(color.NRGBA{0x1d, 0x8a, 0x4e, 0xff}),
	report.Warning:  disc(color.NRGBA{0xe0, 0x9a, 0x00, 0xff}),
	report.Critical: disc(color.NRGBA{0xcf, 0x34, 0x34, 0xff}),
	report.Unknown:  disc(color.NRGBA{0x8a, 0x94, 0xa6, 0xff}),
}

// disc draws a 32x32 PNG of a disc of colour c, smoothed, as a data URL.
func disc(c color.NRGBA) template.URL {
	const size, sub = 32, 4 // pixels, samples a pixel each way
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	r := size/2 - 1.0
	for y := range size {
		for x := range size {
			in := 0
			for i := range sub * sub {
				dx := float64(x) + (float64(i%sub)+.5)/sub - size/2
				dy := float64(y) + (float64(i/sub)+.5)/sub - size/2
				if dx*dx+dy*dy <= r*r {
					in++
				}
			}
			img.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, uint8(int(c.A) * in / (sub * sub))})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
}

// Options are how the page is written.
type Options struct {
	// Refresh, when above zero, makes the page reload itself that often
	// (a meta refresh), for cyrplan serve.
	Refresh time.Duration
}

// Write writes s as one self-contained HTML page.
func Write(w io.Writer, s *report.Status, opts Options) error {
	return page.Execute(w, newView(s, opts))
}

// The roles and health of a slot box, as its data-role and data-health.
const (
	roleMaster  = string(layout.Master)
	roleReplica = string(layout.Replica)
	roleSpare   = "spare"   // a slot in no store
	roleUnknown = "unknown" // its host records no role

	healthOK      = "ok"
	healthProblem = "problem"
	healthUnknown = "unknown" // not read: status --root, or a spare that status does not check
)

// view is what the template draws.
type view struct {
	Level      report.Level // written as its name, the class that colours it
	LevelText  string       // as shown: OK, WARNING, CRITICAL, UNKNOWN
	Time       string       // when the hosts were read, UTC
	TimeISO    string
	Commit     string // the layout commit, short; "" outside git
	FullCommit string
	Local      bool
	Refresh    int          // seconds between reloads; 0 for none
	Icon       template.URL // the favicon
	Hosts      int
	Stores     int
	Slots      int
	Spares     int
	Problems   []problem
	Moved      []moved
	Fleet      fleet
	Rows       []row
}

// problem is one line of the problem list.
type problem struct {
	Level report.Level
	Where string // the store, slot and host it is about
	What  string
}

// moved is a store running backwards.
type moved struct {
	Text     string // as status says it: store13 slot405 => slot703
	Store    string
	From, To string // preferred and current master
	FromHost string
	ToHost   string
}

// fleet is the drawing of the hosts, their slots and the wires between
// them, in pixels.
type fleet struct {
	W, H    int
	Columns []column
	Wires   []wire
	Stores  []string // every store, for the rules that light a store up on hover
}

// column is one host.
type column struct {
	Host      string
	Address   string
	Error     string       // why it did not answer
	Applied   string       // what to say about its last apply; "" when it has the layout's commit
	Level     report.Level // the worst of its own problems
	Problems  string       // those problems, one a line
	X, W      int
	HeadH     int
	Masters   int
	Preferred int
	Failover  string // where its preferred masters fail over to: "imap7 ×2, imap9 ×1"
	Boxes     []box
}

// box is one slot.
type box struct {
	Slot    string
	Store   string // "" for a spare
	Role    string
	Health  string
	Level   report.Level // the worst problem naming the slot
	Mark    string       // "!" for a problem, "?" when not read, else ""
	Moved   bool
	Partner string // its store and the other end of its wires: "store13 → slot405"
	Badges  []badge
	Title   string // the tooltip: everything known about the slot
	Y, H    int
}

// badge is a short fact on a slot box.
type badge struct {
	Class string // ok, info, warning, critical or moved
	Text  string
	Title string
}

// wire is one master -> replica arrow.
type wire struct {
	Store    string
	From, To string
	Class    string // ok, warning, critical; with " moved" for a store running backwards, " uncertain" when the store has not exactly one master
	Title    string
	D        string // the path
	Head     string // the arrowhead, a closed path
	X0, Y0   float64
}

// row is one store in the table.
type row struct {
	Store     string
	Level     report.Level
	Moved     bool
	Masters   []cell // the slots recording master now, with their hosts
	Preferred string
	Replicas  []cell
	Canary    []cell
	Verify    cell
	Cyrus     string
	Prefix    string
	Problems  string // its problems, one a line, for the tooltip
}

// cell is one line of a table cell.
type cell struct {
	Class string // "", ok, warning or critical
	Text  string
	Title string
}

// builder holds the indexes that newView reads the report through.
type builder struct {
	s         *report.Status
	hostOf    map[string]string // slot -> host
	hostOrder map[string]int
	bySlot    map[string][]report.Problem // problems naming a slot
	byStore   map[string][]report.Problem // problems of a store naming no slot
	byHost    map[string][]report.Problem // problems of a host naming no store or slot
	moved     map[string]report.Moved
}

// newView reads s into what the page shows.
func newView(s *report.Status, opts Options) *view {
	b := &builder{s: s, hostOf: map[string]string{}, hostOrder: map[string]int{},
		bySlot: map[string][]report.Problem{}, byStore: map[string][]report.Problem{},
		byHost: map[string][]report.Problem{}, moved: map[string]report.Moved{}}
	for i, h := range s.Hosts {
		b.hostOrder[h.Name] = i
	}
	for _, st := range s.Stores {
		for _, sl := range st.Slots {
			b.hostOf[sl.Slot] = sl.Host
		}
	}
	for _, p := range s.Problems {
		switch {
		case p.Slot != "":
			b.bySlot[p.Slot] = append(b.bySlot[p.Slot], p)
		case p.Store != "":
			b.byStore[p.Store] = append(b.byStore[p.Store], p)
		case p.Host != "":
			b.byHost[p.Host] = append(b.byHost[p.Host], p)
		}
	}
	for _, m := range s.Moved {
		b.moved[m.Store] = m
	}

	v := &view{Level: s.Level, LevelText: strings.ToUpper(s.Level.String()), Icon: icons[min(max(s.Level, report.OK), report.Unknown)],
		Time: "unknown", Local: s.Local, Stores: len(s.Stores), FullCommit: s.LayoutHead,
		Commit: s.LayoutHead[:min(7, len(s.LayoutHead))]}
	if !s.Time.IsZero() {
		v.Time = s.Time.UTC().Format("2006-01-02 15:04:05 UTC")
		v.TimeISO = s.Time.UTC().Format(time.RFC3339)
	}
	if opts.Refresh > 0 {
		v.Refresh = max(1, int(opts.Refresh.Round(time.Second)/time.Second))
	}
	ps := slices.Clone(s.Problems)
	slices.SortStableFunc(ps, func(a, c report.Problem) int { return cmp.Compare(c.Level, a.Level) })
	for _, p := range ps {
		where := strings.TrimSuffix(strings.TrimSuffix(p.String(), p.What), ": ")
		v.Problems = append(v.Problems, problem{Level: p.Level, Where: where, What: p.What})
	}
	for _, m := range s.Moved {
		v.Moved = append(v.Moved, moved{Text: m.String(), Store: m.Store, From: m.From, To: m.To,
			FromHost: b.hostOf[m.From], ToHost: b.hostOf[m.To]})
	}
	v.Fleet = b.fleet()
	for _, c := range v.Fleet.Columns {
		v.Slots += len(c.Boxes)
		for _, bx := range c.Boxes {
			if bx.Role == roleSpare {
				v.Spares++
			}
		}
	}
	v.Hosts = len(v.Fleet.Columns)
	for i := range s.Stores {
		v.Rows = append(v.Rows, b.row(&s.Stores[i]))
	}
	return v
}

// Geometry of the drawing, in CSS pixels.
const (
	aimW      = 1392 // the width it aims to fill: a 1440 px window less the page's margins
	minColW   = 150
	maxColW   = 230
	inset     = 8  // between a column's side and its boxes
	laneGap   = 6  // between parallel wires
	minGutter = 28 // between columns
	minGap    = 12 // between rows of boxes
	edgeGap   = 10 // above the first row and below the last
	headH     = 96 // a column's header
	lineH     = 18 // one more line of a header or of a box's badges
	boxH      = 62
	arrowLen  = 7
)

// slotAt is where a slot's box is: its column and row.
type slotAt struct{ col, row int }

// route is a wire's way through the gaps: out of its master's box into a
// gutter (the gap beside a column), along it to a channel (the gap
// between two rows), along that to the gutter beside the replica, and
// into the replica's box. A wire whose two gutters are one, between
// neighbouring columns, needs no channel.
type route struct {
	from, to slotAt
	g0, g1   int // gutters; gutter g is left of column g
	ch       int // channel; channel k is above row k; -1 for none
	lane     [3]int
}

// span is a stretch of a gutter or channel that one wire runs along, in
// units where gutter or channel k is at 2k and column or row k at 2k+1.
type span struct {
	lo, hi int
	route  int
	part   int // which lane of the route: 0 first gutter, 1 channel, 2 last gutter
	// lean is where the span's ends turn to, -2 to 2: negative for left
	// (in a gutter) or up (in a channel), so that its lane goes there and
	// crosses fewer others.
	lean int
}

// columns are the hosts, the report's in order and then any host that
// only a store names, each with its slots' boxes (in layout order) but no
// geometry yet; at says where each slot is.
func (b *builder) columns() ([]column, map[string]slotAt) {
	s := b.s
	var cols []column
	at := map[string]slotAt{}
	colOf := map[string]int{}
	addSlot := func(host, slot string) {
		c, ok := colOf[host]
		if !ok {
			c = len(cols)
			colOf[host] = c
			cols = append(cols, column{Host: host})
		}
		if _, ok := at[slot]; !ok {
			at[slot] = slotAt{c, len(cols[c].Boxes)}
			cols[c].Boxes = append(cols[c].Boxes, box{Slot: slot})
		}
	}
	for _, h := range s.Hosts {
		colOf[h.Name] = len(cols)
		cols = append(cols, b.column(h))
		for _, sn := range h.Slots {
			addSlot(h.Name, sn)
		}
	}
	for _, st := range s.Stores {
		for _, sl := range st.Slots {
			addSlot(sl.Host, sl.Slot)
		}
	}
	inStore := map[string]bool{}
	for i := range s.Stores {
		st := &s.Stores[i]
		for j := range st.Slots {
			sl := &st.Slots[j]
			inStore[sl.Slot] = true
			a := at[sl.Slot]
			cols[a.col].Boxes[a.row] = b.box(st, sl)
		}
	}
	for c := range cols {
		for r, bx := range cols[c].Boxes {
			if !inStore[bx.Slot] {
				cols[c].Boxes[r] = b.spare(bx.Slot)
			}
		}
	}
	return cols, at
}

// fleet draws the hosts as columns of slot boxes and routes the wires
// between the boxes through the gaps, making the gaps as wide as their
// wires need and the columns as wide as the rest of aimW allows.
func (b *builder) fleet() fleet {
	s := b.s
	cols, at := b.columns()

	// The wires and their routes.
	var wires []wire
	var routes []route
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c.Boxes))
	}
	channelLoad := make([]int, rows+1)
	for i := range s.Stores {
		st := &s.Stores[i]
		for _, w := range b.wires(st) {
			r := route{from: at[w.From], to: at[w.To], ch: -1}
			r.g0, r.g1 = gutters(r.from.col, r.to.col)
			if r.g0 != r.g1 {
				r.ch = channel(r.from.row, r.to.row, channelLoad)
				channelLoad[r.ch]++
			}
			wires, routes = append(wires, w), append(routes, r)
		}
	}
	gutterSpans := make([][]span, len(cols)+1)
	channelSpans := make([][]span, rows+1)
	// facing is where column c is from gutter g, way where b is from a:
	// -1 left or up, 1 right or down.
	facing := func(c, g int) int { return cmp.Compare(2*c+1, 2*g) }
	way := cmp.Compare[int]
	for i, r := range routes {
		y0, y1 := 2*r.from.row+1, 2*r.to.row+1
		if r.ch < 0 {
			gutterSpans[r.g0] = append(gutterSpans[r.g0], span{min(y0, y1), max(y0, y1), i, 0,
				facing(r.from.col, r.g0) + facing(r.to.col, r.g0)})
			continue
		}
		k := 2 * r.ch
		gutterSpans[r.g0] = append(gutterSpans[r.g0], span{min(y0, k), max(y0, k), i, 0,
			facing(r.from.col, r.g0) + way(r.g0, r.g1)})
		channelSpans[r.ch] = append(channelSpans[r.ch], span{2 * min(r.g0, r.g1), 2 * max(r.g0, r.g1), i, 1,
			way(k, y0) + way(k, y1)})
		gutterSpans[r.g1] = append(gutterSpans[r.g1], span{min(k, y1), max(k, y1), i, 2,
			facing(r.to.col, r.g1) + way(r.g1, r.g0)})
	}
	gutterLanes := make([]int, len(gutterSpans))
	for g, sp := range gutterSpans {
		gutterLanes[g] = assignLanes(sp, routes)
	}
	channelLanes := make([]int, len(channelSpans))
	for k, sp := range channelSpans {
		channelLanes[k] = assignLanes(sp, routes)
	}
	for i := range routes {
		if routes[i].ch < 0 { // one gutter, one lane
			routes[i].lane[2] = routes[i].lane[0]
		}
	}

	// Sizes and positions.
	gutterW := make([]int, len(gutterLanes))
	sumGutters := 0
	for g, n := range gutterLanes {
		if n > 0 {
			gutterW[g] = n*laneGap + inset
		}
		if g > 0 && g < len(cols) {
			gutterW[g] = max(minGutter, n*laneGap+2*inset)
		}
		sumGutters += gutterW[g]
	}
	colW := maxColW
	if len(cols) > 0 {
		colW = min(maxColW, max(minColW, (aimW-sumGutters)/len(cols)))
	}
	head := headH
	for _, c := range cols {
		if c.Error != "" || c.Applied != "" {
			head = headH + lineH
		}
	}
	rowH := make([]int, rows)
	for _, c := range cols {
		for r, bx := range c.Boxes {
			rowH[r] = max(rowH[r], boxHeight(bx, colW-2*inset))
		}
	}
	channelH := make([]int, len(channelLanes))
	channelY := make([]int, len(channelLanes)) // the top of each channel
	rowY := make([]int, rows)
	y := head
	for k, n := range channelLanes {
		gap := minGap
		if k == 0 || k == rows {
			gap = edgeGap
		}
		channelH[k] = max(gap, (n+1)*laneGap)
		channelY[k] = y
		y += channelH[k]
		if k < rows {
			rowY[k] = y
			y += rowH[k]
		}
	}
	height := y
	x := gutterW[0]
	for c := range cols {
		cols[c].X, cols[c].W, cols[c].HeadH = x, colW, head
		for r := range cols[c].Boxes {
			cols[c].Boxes[r].Y, cols[c].Boxes[r].H = rowY[r], rowH[r]
		}
		x += colW + gutterW[c+1]
	}
	width := x

	// laneX is the x of lane i of gutter g, laneY the y of lane i of
	// channel k: the lanes sit in the middle of their gap.
	laneX := func(g, i int) float64 {
		left := float64(gutterW[0])
		if g > 0 {
			left = float64(cols[g-1].X + colW)
		}
		return left + float64(gutterW[g])/2 + (float64(i)-float64(gutterLanes[g]-1)/2)*laneGap
	}
	laneY := func(k, i int) float64 {
		return float64(channelY[k]) + float64(channelH[k])/2 + (float64(i)-float64(channelLanes[k]-1)/2)*laneGap
	}
	side := func(a slotAt, g int) float64 { // the side of a's box that faces gutter g
		if g <= a.col {
			return float64(cols[a.col].X + inset)
		}
		return float64(cols[a.col].X + colW - inset)
	}
	mid := func(a slotAt) float64 { return float64(rowY[a.row]) + float64(rowH[a.row])/2 }
	for i, r := range routes {
		x0, y0 := side(r.from, r.g0), mid(r.from)
		x1, y1 := side(r.to, r.g1), mid(r.to)
		dir := 1.0 // the way the wire enters the replica's box
		if laneX(r.g1, r.lane[2]) > x1 {
			dir = -1
		}
		end := x1 - dir*(arrowLen-1)
		pts := []point{{x0, y0}, {laneX(r.g0, r.lane[0]), y0}}
		if r.ch >= 0 {
			cy := laneY(r.ch, r.lane[1])
			pts = append(pts, point{laneX(r.g0, r.lane[0]), cy}, point{laneX(r.g1, r.lane[2]), cy})
		}
		pts = append(pts, point{laneX(r.g1, r.lane[2]), y1}, point{end, y1})
		wires[i].D = roundedPath(pts, 5)
		wires[i].Head = fmt.Sprintf("M%s %sL%s %sL%s %sZ", num(x1), num(y1),
			num(x1-dir*arrowLen), num(y1-4), num(x1-dir*arrowLen), num(y1+4))
		wires[i].X0, wires[i].Y0 = x0, y0
	}
	f := fleet{W: width, H: height, Columns: cols, Wires: wires}
	for _, st := range s.Stores {
		f.Stores = append(f.Stores, st.Store)
	}
	return f
}

// gutters says which gutters a wire from column a to column c runs in:
// the one beside a that faces c, and the one beside c that faces a. A
// wire within one column runs in the gutter on its right.
func gutters(a, c int) (int, int) {
	switch {
	case c > a:
		return a + 1, c
	case c < a:
		return a, c + 1
	}
	return a + 1, a + 1
}

// channel chooses the channel for a wire from row a to row c: one of the
// gaps between them (or beside them, when they are one row), the least
// used, nearest a.
func channel(a, c int, load []int) int {
	lo, hi := min(a, c)+1, max(a, c)
	if a == c {
		lo, hi = a, a+1
	}
	best := -1
	for k := lo; k <= hi; k++ {
		d, bd := abs(2*k-(2*a+1)), abs(2*best-(2*a+1))
		if best < 0 || load[k] < load[best] || load[k] == load[best] && d < bd {
			best = k
		}
	}
	return best
}

func abs(n int) int { return max(n, -n) }

// assignLanes gives each span of one gap the first lane that no span
// overlapping it has, then orders the lanes by how their spans lean,
// records each span's lane in its route, and says how many lanes the gap
// needs.
func assignLanes(spans []span, routes []route) int {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.lo, b.lo), cmp.Compare(a.hi, b.hi)) })
	var ends, lean, count []int // the end of each lane's last span, the sum of its spans' leans, how many
	lanes := make([]int, len(spans))
	for i, sp := range spans {
		lane := slices.IndexFunc(ends, func(e int) bool { return e < sp.lo })
		if lane < 0 {
			lane = len(ends)
			ends, lean, count = append(ends, 0), append(lean, 0), append(count, 0)
		}
		ends[lane], lanes[i] = sp.hi, lane
		lean[lane] += sp.lean
		count[lane]++
	}
	order := make([]int, len(ends))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lean[a]*count[b], lean[b]*count[a]) })
	place := make([]int, len(ends))
	for p, lane := range order {
		place[lane] = p
	}
	for i, sp := range spans {
		routes[sp.route].lane[sp.part] = place[lanes[i]]
	}
	return len(ends)
}

// point is a point of the drawing.
type point struct{ x, y float64 }

// roundedPath draws the line through pts, which turns only at right
// angles, with its corners rounded to radius r.
func roundedPath(pts []point, r float64) string {
	// Drop points that do not turn: repeats and points within a straight run.
	var ps []point
	for _, p := range pts {
		if n := len(ps); n > 0 && ps[n-1] == p {
			continue
		}
		if n := len(ps); n > 1 && (ps[n-2].x == ps[n-1].x && ps[n-1].x == p.x || ps[n-2].y == ps[n-1].y && ps[n-1].y == p.y) {
			ps[n-1] = p
			continue
		}
		ps = append(ps, p)
	}
	var d strings.Builder
	fmt.Fprintf(&d, "M%s %s", num(ps[0].x), num(ps[0].y))
	for i := 1; i < len(ps)-1; i++ {
		prev, p, next := ps[i-1], ps[i], ps[i+1]
		rr := min(r, dist(prev, p)/2, dist(p, next)/2)
		a := toward(p, prev, rr)
		c := toward(p, next, rr)
		fmt.Fprintf(&d, "L%s %sQ%s %s %s %s", num(a.x), num(a.y), num(p.x), num(p.y), num(c.x), num(c.y))
	}
	last := ps[len(ps)-1]
	fmt.Fprintf(&d, "L%s %s", num(last.x), num(last.y))
	return d.String()
}

// dist is the distance between two points on a line along an axis.
func dist(a, b point) float64 { return max(a.x-b.x, b.x-a.x) + max(a.y-b.y, b.y-a.y) }

// toward is the point d from p on the way to q, along an axis.
func toward(p, q point, d float64) point {
	l := dist(p, q)
	return point{p.x + (q.x-p.x)/l*d, p.y + (q.y-p.y)/l*d}
}

// num writes a coordinate to a tenth of a pixel.
func num(f float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0")
}

// boxHeight is the height a box needs in a column w wide: a second line
// of badges when they do not fit on one. It guesses the badges' widths
// from their lengths.
func boxHeight(bx box, w int) int {
	const charW, badgePad, badgeGap, boxPad = 6.4, 12, 4, 20
	width := 0.0
	for i, bg := range bx.Badges {
		if i > 0 {
			width += badgeGap
		}
		width += float64(len([]rune(bg.Text)))*charW + badgePad
	}
	if width > float64(w-boxPad) {
		return boxH + lineH
	}
	return boxH
}

// column is the header of a host's column: its address, how it
// answered, its masters and where they fail over to.
func (b *builder) column(h report.Host) column {
	c := column{Host: h.Name, Address: h.Address, Error: h.Error, Masters: h.Masters, Preferred: h.Preferred}
	switch {
	case h.Applied == report.NeverApplied:
		c.Applied = "never applied"
	case h.Applied != "" && h.Applied != b.s.LayoutHead:
		c.Applied = "applied " + h.Applied[:min(7, len(h.Applied))] + ", not the layout's"
	}
	for _, p := range b.byHost[h.Name] {
		c.Level = max(c.Level, p.Level)
	}
	c.Problems = problemLines(b.byHost[h.Name])
	to := slices.Collect(maps.Keys(h.FailoverTo))
	slices.SortFunc(to, func(a, c string) int { // in host order, then hosts not in the report
		return cmp.Or(cmp.Compare(b.rank(a), b.rank(c)), cmp.Compare(a, c))
	})
	var parts []string
	for _, t := range to {
		parts = append(parts, fmt.Sprintf("%s ×%d", t, h.FailoverTo[t]))
	}
	c.Failover = strings.Join(parts, ", ")
	return c
}

// rank is where a host comes in the report's hosts, or after them.
func (b *builder) rank(host string) int {
	if i, ok := b.hostOrder[host]; ok {
		return i
	}
	return len(b.hostOrder)
}

// spare is the box of a slot in no store.
func (b *builder) spare(slot string) box {
	bx := box{Slot: slot, Role: roleSpare, Health: healthUnknown, Partner: "spare: in no store",
		Title: slot + " is a spare: it belongs to no store, and status does not check it."}
	for _, p := range b.bySlot[slot] {
		bx.Level = max(bx.Level, p.Level)
	}
	if bx.Level > report.OK {
		bx.Health, bx.Mark = healthProblem, "!"
		bx.Title += "\n" + problemLines(b.bySlot[slot])
	}
	return bx
}

// box is the box of slot sl of store st: its role, health, what is
// wrong, its badges and a tooltip with everything known about it.
func (b *builder) box(st *report.Store, sl *report.Slot) box {
	bx := box{Slot: sl.Slot, Store: st.Store, Role: sl.Role, Health: healthOK}
	if _, ok := b.moved[st.Store]; ok {
		bx.Moved = true
	}
	if bx.Role == "" {
		bx.Role = roleUnknown
	}
	for _, p := range b.bySlot[sl.Slot] {
		bx.Level = max(bx.Level, p.Level)
	}
	if (ill(sl) || sl.Error != "") && bx.Level == report.OK {
		bx.Level = report.Critical
	}
	switch {
	case bx.Level > report.OK:
		bx.Health, bx.Mark = healthProblem, "!"
	case sl.Health == report.HealthUnknown:
		bx.Health, bx.Mark = healthUnknown, "?"
	}

	title := []string{fmt.Sprintf("%s on %s: %s of %s", sl.Slot, sl.Host, bx.Role, st.Store)}
	if st.Preferred == sl.Slot {
		title[0] += ", its preferred master"
	}
	title = append(title, "health: "+sl.Health)
	if sl.Error != "" {
		title = append(title, "error: "+sl.Error)
	}
	if sl.Running != "" {
		title = append(title, "running "+sl.Running)
	}
	if ill(sl) {
		bx.Badges = append(bx.Badges, badge{"critical", sl.Health, strings.TrimSpace(sl.Health + "\n" + sl.Error)})
	} else if sl.Error != "" {
		bx.Badges = append(bx.Badges, badge{"critical", "error", sl.Error})
	}
	if sl.Drift > 0 {
		bx.Badges = append(bx.Badges, badge{"warning", fmt.Sprintf("drift %d", sl.Drift),
			fmt.Sprintf("%d %s changed by hand since the last apply", sl.Drift, plural(sl.Drift, "file", "files"))})
	}
	if m, ok := b.moved[st.Store]; ok {
		bx.Badges = append(bx.Badges, badge{"moved", "backwards",
			fmt.Sprintf("%s runs backwards: it prefers %s as master, and %s is master now", m.Store, m.From, m.To)})
	}
	if sl.Running != "" && st.Prefix != "" && !strings.HasPrefix(sl.Running, strings.TrimSuffix(st.Prefix, "/")+"/") {
		bx.Badges = append(bx.Badges, badge{"warning", "other build",
			fmt.Sprintf("runs %s, but the layout declares cyrus %s in %s", sl.Running, st.Cyrus, st.Prefix)})
	}

	masters := st.Current
	switch {
	case slices.Contains(masters, sl.Slot):
		var to []string
		for _, o := range st.Slots {
			if !slices.Contains(masters, o.Slot) {
				to = append(to, o.Slot)
			}
		}
		bx.Partner = st.Store + " → " + strings.Join(to, ", ")
		if len(to) == 0 {
			bx.Partner = st.Store + " · no replica"
		}
		if v := st.Verify; v != nil && v.Error != "" {
			bx.Badges = append(bx.Badges, badge{"critical", "verify ✗", "the last verify failed: " + v.Error})
		}
		if len(bx.Badges) == 0 {
			bx.Badges = append(bx.Badges, badge{"info", "cyrus " + st.Cyrus, "the layout declares cyrus " + st.Cyrus + " in " + st.Prefix})
		}
	case len(masters) == 0:
		bx.Partner = st.Store + " · no master"
	default:
		bx.Partner = st.Store + " ← " + strings.Join(masters, ", ")
	}
	if len(masters) > 1 {
		bx.Partner = fmt.Sprintf("%s · %d masters", st.Store, len(masters))
	}
	if r := replicationTo(st, sl.Slot); r != nil {
		title = append(title, fmt.Sprintf("replication from %s: %s", strings.Join(st.Current, ", "), b.replicationText(r)))
		bx.Badges = append(bx.Badges, b.replicationBadges(r, bx.Level)...)
	}
	if v := st.Verify; v != nil {
		for _, c := range v.Replicas {
			if c.Replica != sl.Slot {
				continue
			}
			cl := b.comparison(v, c)
			title = append(title, "verify: "+cl.Title)
			if cl.Class == "critical" {
				bx.Badges = append(bx.Badges, badge{"critical", "verify ✗", cl.Title})
			}
		}
	}
	if ps := append(slices.Clone(b.bySlot[sl.Slot]), b.byStore[st.Store]...); len(ps) > 0 {
		title = append(title, problemLines(ps))
	}
	bx.Title = strings.Join(title, "\n")
	return bx
}

// ill says whether a slot's health is a problem.
func ill(sl *report.Slot) bool {
	return sl.Health != report.HealthOK && sl.Health != report.HealthUnknown
}

// replicationTo is the replication of st's master to slot, or nil.
func replicationTo(st *report.Store, slot string) *report.Replication {
	for i := range st.Replication {
		if st.Replication[i].Replica == slot {
			return &st.Replication[i]
		}
	}
	return nil
}

// replicationBadges are the badges of a replica about its replication;
// level is the worst problem naming the replica, which says whether a
// backlog is worth a warning.
func (b *builder) replicationBadges(r *report.Replication, level report.Level) []badge {
	var out []badge
	if r.SyncClient != nil && !*r.SyncClient {
		out = append(out, badge{"critical", "sync_client ✗", "the master's sync_client for " + r.Replica + " is not running"})
	}
	if r.Backlog > 0 {
		class := "info"
		if level > report.OK {
			class = "warning"
		}
		out = append(out, badge{class, fmt.Sprintf("%d waiting · %s", r.Backlog, age(r)), backlogText(r)})
	}
	if c := r.Canary; c != nil {
		if c.Error != "" {
			out = append(out, badge{"critical", "canary ✗", "the last canary, sent " + b.when(c.SentAt) + ", did not arrive: " + c.Error})
		} else {
			out = append(out, badge{"ok", "canary " + seconds(c.Seconds), "the last canary, sent " + b.when(c.SentAt) + ", arrived after " + seconds(c.Seconds)})
		}
	}
	return out
}

// age is how long the oldest entry of a backlog has waited.
func age(r *report.Replication) string {
	age := short(time.Duration(r.BacklogAge * float64(time.Second)))
	if r.BacklogAgeBound {
		return "≥" + age
	}
	return age
}

// backlogText says how much of a backlog waits, and since when.
func backlogText(r *report.Replication) string {
	if r.Backlog == 0 {
		return "nothing waiting"
	}
	oldest := "the oldest for " + age(r)
	if r.BacklogAgeBound {
		oldest = "the oldest for at least " + short(time.Duration(r.BacklogAge*float64(time.Second))) + " (the host gave no creation time)"
	}
	return fmt.Sprintf("%d %s waiting, %s", r.Backlog, plural(r.Backlog, "entry", "entries"), oldest)
}

// replicationText says all that is known about a replication.
func (b *builder) replicationText(r *report.Replication) string {
	parts := []string{backlogText(r)}
	if r.SyncClient != nil {
		parts = append(parts, map[bool]string{true: "sync_client running", false: "sync_client NOT running"}[*r.SyncClient])
	}
	if c := r.Canary; c != nil {
		if c.Error != "" {
			parts = append(parts, "last canary ("+b.when(c.SentAt)+") did not arrive: "+c.Error)
		} else {
			parts = append(parts, "last canary ("+b.when(c.SentAt)+") took "+seconds(c.Seconds))
		}
	}
	return strings.Join(parts, "; ")
}

// wires are the arrows of a store: from each current master (or, with
// none, from its preferred master) to each other slot.
func (b *builder) wires(st *report.Store) []wire {
	from := st.Current
	if len(from) == 0 {
		from = []string{st.Preferred}
	}
	class := ""
	if len(st.Current) != 1 {
		class = " uncertain"
	}
	if _, ok := b.moved[st.Store]; ok {
		class += " moved"
	}
	var out []wire
	for _, f := range from {
		if b.hostOf[f] == "" {
			continue
		}
		for _, sl := range st.Slots {
			if slices.Contains(from, sl.Slot) {
				continue
			}
			w := wire{Store: st.Store, From: f, To: sl.Slot, Class: "ok" + class,
				Title: fmt.Sprintf("%s: %s → %s", st.Store, f, sl.Slot)}
			if r := replicationTo(st, sl.Slot); r != nil {
				w.Title += "\n" + b.replicationText(r)
				switch {
				case r.SyncClient != nil && !*r.SyncClient || r.Canary != nil && r.Canary.Error != "":
					w.Class = "critical" + class
				case r.Backlog > 0 && len(b.bySlot[sl.Slot]) > 0:
					w.Class = "warning" + class
				}
			}
			out = append(out, w)
		}
	}
	return out
}

// row is the table row of st.
func (b *builder) row(st *report.Store) row {
	rw := row{Store: st.Store, Level: st.Level, Cyrus: st.Cyrus, Prefix: st.Prefix}
	if _, ok := b.moved[st.Store]; ok {
		rw.Moved = true
	}
	for _, m := range st.Current {
		c := cell{Text: m + " " + b.hostOf[m]}
		if i := slices.IndexFunc(st.Slots, func(sl report.Slot) bool { return sl.Slot == m }); i >= 0 && ill(&st.Slots[i]) {
			c = cell{Class: "critical", Text: c.Text + " · " + st.Slots[i].Health, Title: st.Slots[i].Error}
		}
		rw.Masters = append(rw.Masters, c)
	}
	if len(rw.Masters) == 0 {
		rw.Masters = []cell{{Class: "critical", Text: "none"}}
	}
	rw.Preferred = st.Preferred + " " + b.hostOf[st.Preferred]
	for _, sl := range st.Slots {
		if slices.Contains(st.Current, sl.Slot) {
			continue
		}
		c := cell{Text: sl.Slot + " " + sl.Host}
		can := cell{Text: "—", Title: "no canary sent"}
		if r := replicationTo(st, sl.Slot); r != nil {
			c.Title = b.replicationText(r)
			switch {
			case r.SyncClient != nil && !*r.SyncClient:
				c.Class, c.Text = "critical", c.Text+" · sync_client not running"
			case r.Backlog > 0:
				c.Class, c.Text = "warning", fmt.Sprintf("%s · %d waiting, %s", c.Text, r.Backlog, age(r))
			default:
				c.Class, c.Text = "ok", c.Text+" · in sync"
			}
			if k := r.Canary; k != nil {
				can = cell{Class: "ok", Text: seconds(k.Seconds) + " · " + b.when(k.SentAt),
					Title: "sent " + b.when(k.SentAt) + ", arrived after " + seconds(k.Seconds)}
				if k.Error != "" {
					can = cell{Class: "critical", Text: "failed · " + b.when(k.SentAt), Title: k.Error}
				}
			}
		}
		if ill(&sl) {
			c = cell{Class: "critical", Text: sl.Slot + " " + sl.Host + " · " + sl.Health, Title: strings.TrimSpace(sl.Error + "\n" + c.Title)}
		}
		rw.Replicas = append(rw.Replicas, c)
		rw.Canary = append(rw.Canary, can)
	}
	rw.Verify = cell{Text: "never"}
	if v := st.Verify; v != nil {
		rw.Verify = cell{Class: "ok", Text: fmt.Sprintf("%s · %d mailboxes equal", b.when(v.At), v.Mailboxes), Title: "on every replica"}
		var bad []string
		for _, c := range v.Replicas {
			if cl := b.comparison(v, c); cl.Class == "critical" {
				bad = append(bad, c.Replica+": "+cl.Title)
			}
		}
		switch {
		case v.Error != "":
			rw.Verify = cell{Class: "critical", Text: b.when(v.At) + " · failed", Title: v.Error}
		case v.Divergent() > 0:
			rw.Verify = cell{Class: "critical", Text: fmt.Sprintf("%s · %d %s", b.when(v.At), v.Divergent(), plural(v.Divergent(), "mailbox differs", "mailboxes differ")),
				Title: strings.Join(bad, "\n")}
		case len(bad) > 0:
			rw.Verify = cell{Class: "critical", Text: b.when(v.At) + " · a replica could not be read", Title: strings.Join(bad, "\n")}
		}
	}
	rw.Problems = problemLines(append(slices.Clone(b.byStore[st.Store]), b.storeSlotProblems(st)...))
	return rw
}

// storeSlotProblems are the problems naming a slot of st.
func (b *builder) storeSlotProblems(st *report.Store) []report.Problem {
	var out []report.Problem
	for _, sl := range st.Slots {
		out = append(out, b.bySlot[sl.Slot]...)
	}
	return out
}

// comparison says how a replica compared with its master in the last
// verify: class critical when it differs or could not be read.
func (b *builder) comparison(v *report.Verify, c report.Comparison) cell {
	switch {
	case c.Error != "":
		return cell{Class: "critical", Title: fmt.Sprintf("%s: could not read it: %s", b.when(v.At), c.Error)}
	case len(c.Divergent) > 0:
		var names []string
		for _, m := range c.Divergent {
			names = append(names, m.Name+" ("+strings.Join(m.What, ", ")+")")
		}
		return cell{Class: "critical", Title: fmt.Sprintf("%s: %d %s: %s", b.when(v.At), len(c.Divergent),
			plural(len(c.Divergent), "mailbox differs", "mailboxes differ"), strings.Join(names, "; "))}
	}
	return cell{Class: "ok", Title: fmt.Sprintf("%s: all %d mailboxes equal", b.when(v.At), v.Mailboxes)}
}

func problemLines(ps []report.Problem) string {
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		lines = append(lines, p.Level.String()+": "+p.What)
	}
	return strings.Join(lines, "\n")
}

// when writes a time in UTC: the time of day when it is the report's
// day, else the date too.
func (b *builder) when(t time.Time) string {
	t = t.UTC()
	if y, m, d := t.Date(); b.s.Time.IsZero() || y != b.s.Time.UTC().Year() || m != b.s.Time.UTC().Month() || d != b.s.Time.UTC().Day() {
		return t.Format("2006-01-02 15:04 UTC")
	}
	return t.Format("15:04:05 UTC")
}

// short writes a duration in at most two units: 45s, 10m, 2h05m, 3d04h.
func short(d time.Duration) string {
	switch s := int(d / time.Second); {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", s/60)
		}
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 48*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
	}
}

func seconds(s float64) string {
	if s >= 10 {
		return fmt.Sprintf("%.0fs", s)
	}
	return fmt.Sprintf("%.2fs", s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
