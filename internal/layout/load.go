package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"

	"github.com/cyrplan/cyrplan/schema"
)

// schemaFile is the name the embedded schema is compiled under; errors
// never point into it, they point at the operator's value.
const schemaFile = "<cyrplan>/schema/" + schema.File

// Option changes what Load checks.
type Option func(*checker)

// NoSpreadLimit leaves failover.maxPerHost unchecked, for callers that
// report the spread themselves (cyrplan spread).
func NoSpreadLimit() Option { return func(c *checker) { c.noSpreadLimit = true } }

// Load reads, unifies, decodes and checks the layout package in dir. An
// invalid layout gives Errors, every problem with its position; errors
// about dir itself (missing, not a directory, no CUE files) name it as
// given.
func Load(dir string, opts ...Option) (*Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	switch fi, err := os.Stat(abs); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: no such directory", dir)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	files := sourceFiles{fsys: os.DirFS(abs), dir: dir, name: func(p string) string { return filepath.Join(abs, p) }}
	return load1(&load.Config{Dir: abs}, files, opts)
}

// LoadFS is Load for a layout whose files are the top of fsys (a git
// revision, say). Positions in errors name files as name/<file>, as in
// "HEAD~1:layout/stores.cue".
func LoadFS(fsys fs.FS, name string, opts ...Option) (*Layout, error) {
	fromFS := func(p string) string { return strings.TrimSuffix(name, "/") + p }
	files := sourceFiles{fsys: fsys, dir: name, name: func(p string) string { return fromFS("/" + p) }}
	return load1(&load.Config{Dir: "/", FS: fsys, FromFSPath: fromFS}, files, opts)
}

func load1(cfg *load.Config, files sourceFiles, opts []Option) (*Layout, error) {
	pkg, pkgErrs, err := files.pkg()
	if err != nil {
		return nil, err
	}
	if pkg == "" && len(pkgErrs) > 0 {
		return nil, pkgErrs
	}
	cfg.Package = pkg // files of other packages are errors of their own
	ctx := cuecontext.New()
	src, err := schema.FS.ReadFile(schema.File)
	if err != nil {
		return nil, err
	}
	sv := ctx.CompileBytes(src, cue.Filename(schemaFile))
	if err := sv.Err(); err != nil {
		return nil, fmt.Errorf("embedded schema: %w", err)
	}
	insts := load.Instances([]string{"."}, cfg)
	if len(insts) != 1 {
		return nil, fmt.Errorf("%s: want one CUE package, found %d", files.dir, len(insts))
	}
	if err := insts[0].Err; err != nil {
		errs := append(pkgErrs, fromCUE(err)...)
		errs.sort()
		return nil, errs
	}
	def := sv.LookupPath(cue.ParsePath("#Layout"))
	newChecker := func() *checker {
		c := &checker{layout: &Layout{}, bad: map[string]bool{}, broken: map[string]bool{}, checkedOptions: map[checkedOption]string{}}
		for _, o := range opts {
			o(c)
		}
		return c
	}
	// A layout of plain data is read from its syntax and checked while
	// CUE evaluates it (readPlain). That stands if CUE finds no error;
	// otherwise the checks run again on what CUE makes of the layout.
	plain := make(chan *checked, 1)
	if len(pkgErrs) == 0 {
		d := newDefaults(def)
		go func() {
			defer func() {
				// The checks expect the schema's shapes, which only CUE
				// has checked yet.
				if r := recover(); r != nil {
					plain <- &checked{panicked: fmt.Sprintf("%v\n\n%s", r, debug.Stack())}
				}
			}()
			plain <- checkPlain(insts[0].Files, d, newChecker())
		}()
	} else {
		plain <- nil
	}
	// Errors in the operator's value alone (conflicts between files)
	// are reported by validate, with the schema's.
	uv := ctx.BuildInstance(insts[0])
	c := newChecker()
	c.user, c.val, c.errs = uv, def.Unify(uv), pkgErrs
	c.validate()
	if p := <-plain; p != nil && len(c.errs) == 0 {
		if p.panicked != "" {
			panic(p.panicked)
		}
		c.layout, c.errs, c.positions = p.layout, p.errs, p.positions
	} else {
		var raw rawLayout
		c.decode(&raw)
		c.check(&raw)
	}
	c.resolve()
	if len(c.errs) > 0 {
		c.errs.sort()
		return nil, c.errs
	}
	return c.layout, nil
}

// checked is what the checks of a layout found.
type checked struct {
	layout    *Layout
	errs      Errors
	positions []func(*checker) // of errs
	panicked  string           // what the checks panicked with, and where
}

// checkPlain reads files with readPlain and checks them with c, which
// has no CUE value: the positions of errors are resolved later, by a
// checker that has. It returns nil if the layout is not plain data.
func checkPlain(files []*ast.File, d *defaults, c *checker) *checked {
	var raw rawLayout
	w, ok := readPlain(files, d, &raw)
	if !ok {
		return nil
	}
	c.written = w
	c.check(&raw)
	return &checked{layout: c.layout, errs: c.errs, positions: c.positions}
}

// fromCUE turns CUE's errors into Errors: one per field (CUE reports a
// failed disjunction as several), positioned at the operator's value.
func fromCUE(err error) Errors {
	if err == nil {
		return nil
	}
	var out Errors
	byPath := map[string]*Error{}
	for _, e := range cueerrors.Errors(err) {
		sel := labels(e.Path())
		path := pathString(sel)
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if strings.Contains(msg, "errors in empty disjunction") {
			continue
		}
		pos := userPos(append([]token.Pos{e.Position()}, e.InputPositions()...))
		if prev, ok := byPath[path]; ok && path != "" {
			// Keep the last alternative of a disjunction: the
			// schema lists defaults first and the type last.
			prev.Msg = msg
			if pos.IsValid() {
				prev.Pos = pos
			}
			continue
		}
		x := &Error{Pos: pos, Path: path, Msg: msg, sel: sel}
		byPath[path] = x
		out = append(out, x)
	}
	return out
}

// labels turns a CUE error path into field names: without the schema's
// #Layout, and with quoted labels ("3.6.1") unquoted.
func labels(p []string) []string {
	if len(p) > 0 && p[0] == "#Layout" {
		p = p[1:]
	}
	out := make([]string, len(p))
	for i, s := range p {
		if u, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
			s = u
		}
		out[i] = s
	}
	return out
}

// validate records every schema error. CUE's Validate reports one error
// per value shared from the schema and drops incomplete values (missing
// fields) once it has found another error, so it walks down the tree and
// validates each failing value on its own.
func (c *checker) validate() {
	if c.val.Validate(cue.Concrete(true)) == nil {
		return
	}
	var all []cueerrors.Error
	var walk func(v cue.Value) bool
	walk = func(v cue.Value) bool {
		err := v.Validate(cue.Concrete(true))
		if err == nil {
			return false
		}
		// A struct with errors below may have kind bottom: try both.
		below := false
		if it, err := v.Fields(); err == nil {
			for it.Next() {
				below = walk(it.Value()) || below
			}
		} else if it, err := v.List(); err == nil {
			for it.Next() {
				below = walk(it.Value()) || below
			}
		}
		if !below {
			all = append(all, cueerrors.Errors(err)...)
		}
		return true
	}
	walk(c.val)
	var list cueerrors.Error
	for _, e := range all {
		list = cueerrors.Append(list, e)
	}
	for _, e := range fromCUE(list) {
		c.explain(e)
		c.errs = append(c.errs, e)
	}
}

var (
	listLengthsRE = regexp.MustCompile(`^incompatible list lengths \(0 and ([0-9]+)\)$`)
	mismatchRE    = regexp.MustCompile(`^conflicting values (.+) and (.+) \(mismatched types ([a-z]+) and ([a-z]+)\)$`)
)

// explain rewrites CUE's messages for the errors an operator makes most,
// and positions errors that CUE places in the schema (a missing field)
// at the nearest value the operator wrote.
func (c *checker) explain(e *Error) {
	if !e.Pos.IsValid() {
		e.Pos = c.labelPos(e.sel)
	}
	user := c.user.LookupPath(cuePath(e.sel))
	name := ""
	if len(e.sel) > 0 {
		name = e.sel[len(e.sel)-1]
	}
	switch {
	case strings.HasPrefix(e.Msg, "incomplete value ") && !user.Exists():
		e.Msg = fmt.Sprintf("field %s is missing (want %s)", name, strings.TrimPrefix(e.Msg, "incomplete value "))
	case mismatchRE.MatchString(e.Msg) && user.Exists() && user.Err() == nil:
		// The operator's value against the schema's type: say which is which.
		m := mismatchRE.FindStringSubmatch(e.Msg)
		kind := user.Kind().String()
		switch kind {
		case m[3]:
			e.Msg = fmt.Sprintf("%s is %s; want %s", m[1], article(m[3]), article(m[4]))
		case m[4]:
			e.Msg = fmt.Sprintf("%s is %s; want %s", m[2], article(m[4]), article(m[3]))
		}
	case listLengthsRE.MatchString(e.Msg) && user.Exists():
		n := listLengthsRE.FindStringSubmatch(e.Msg)[1]
		e.Msg = "the list is empty; it needs at least " + n + " element"
		if n != "1" {
			e.Msg += "s"
		}
	case e.Msg == "field not allowed" && name != "":
		e.Msg = "unknown field " + printable(name)
		// The fields the schema allows here: the others are bottom.
		var known []string
		if it, err := c.val.LookupPath(cuePath(e.sel[:len(e.sel)-1])).Fields(cue.Optional(true)); err == nil {
			for it.Next() {
				if f, ok := fieldName(it.Selector()); ok && f != name && it.Value().Err() == nil {
					known = append(known, f)
				}
			}
		}
		if s := suggest(name, known); s != "" {
			e.Hint = "did you mean " + s + "?"
		}
	}
}

func article(kind string) string {
	switch kind {
	case "int", "int64":
		return "an integer"
	case "bool":
		return "a boolean"
	case "float":
		return "a fraction"
	case "null":
		return "null"
	}
	return "a " + kind
}

// userPos returns the first position that is in the operator's files.
func userPos(ps []token.Pos) token.Pos {
	for _, p := range ps {
		if p.IsValid() && !strings.HasPrefix(p.Filename(), "<cyrplan>") {
			return p
		}
	}
	return token.NoPos
}
