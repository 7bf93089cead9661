package render

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/cyrplan/cyrplan/internal/hostpath"
	"github.com/cyrplan/cyrplan/internal/layout"
	"github.com/cyrplan/cyrplan/internal/shell"
)

var (
	//go:embed init.sh.tmpl
	initText string
	//go:embed unit.service.tmpl
	unitText string

	initTmpl = template.Must(template.New("init").Option("missingkey=error").Funcs(template.FuncMap{"q": quote}).Parse(initText))
	unitTmpl = template.Must(template.New("unit").Option("missingkey=error").Parse(unitText))
)

type scriptData struct {
	Paths                                          hostpath.Slot
	Slot, Store, What, Header, Prefix, DefaultRole string
	Addr, Interface                                string
	Port                                           int
	FloatMaster, FloatReplica                      string
	FloatBits                                      int
}

func dataOf(l *layout.Layout, s *layout.Slot) scriptData {
	build := l.BuildOf(s.Name)
	h := l.Hosts[s.Host]
	d := scriptData{
		Paths:       hostpath.Of(s.Name, s.Meta),
		Slot:        s.Name,
		What:        "spare slot",
		Prefix:      build.Prefix,
		DefaultRole: string(layout.Master),
		Addr:        h.Address,
		Interface:   h.Interface,
		Port:        s.IMAPPort,
		FloatBits:   32,
	}
	if strings.Contains(h.Address, ":") {
		d.FloatBits = 128
	}
	if st := l.Stores[s.Store]; st != nil {
		d.What = "store " + st.Name
		d.Store = st.Name
		d.DefaultRole = string(s.Role)
		d.FloatMaster = st.IP.Master
		// The floating replica address follows the preferred pair:
		// the preferred master and the first replica.
		if s.Name == st.Master || s.Name == st.Replicas[0] {
			d.FloatReplica = st.IP.Replica
		}
	}
	var b bytes.Buffer
	header(&b, "#", "cyrus-"+s.Name+": Cyrus IMAP "+s.Name+", "+d.What+", Cyrus "+build.Name)
	d.Header = strings.TrimSuffix(b.String(), "\n")
	return d
}

func initScript(b *bytes.Buffer, l *layout.Layout, s *layout.Slot) {
	execute(b, initTmpl, dataOf(l, s))
}

func unit(b *bytes.Buffer, l *layout.Layout, s *layout.Slot) {
	execute(b, unitTmpl, dataOf(l, s))
}

// execute runs t into b.
func execute(b *bytes.Buffer, t *template.Template, d scriptData) {
	if err := t.Execute(b, d); err != nil {
		panic("render: " + t.Name() + " template: " + err.Error()) // the templates are fixed: a bug
	}
}

// quote writes a value of the init script as one shell word.
func quote(v any) string { return shell.Quote(fmt.Sprint(v)) }
