package layout

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"cuelang.org/go/cue"
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
// invalid layout gives Errors, every problem with its position.
func Load(dir string, opts ...Option) (*Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return load1(&load.Config{Dir: abs}, opts)
}

// LoadFS is Load for a layout read from fsys (a git revision, say).
// Positions in errors name files as dir/<file>, with dir as given.
func LoadFS(fsys fs.FS, dir string, opts ...Option) (*Layout, error) {
	return load1(&load.Config{Dir: dir, FS: fsys}, opts)
}

func load1(cfg *load.Config, opts []Option) (*Layout, error) {
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
		return nil, fmt.Errorf("%s: want one CUE package, found %d", cfg.Dir, len(insts))
	}
	if err := insts[0].Err; err != nil {
		return nil, fromCUE(err)
	}
	uv := ctx.BuildInstance(insts[0])
	if err := uv.Err(); err != nil {
		return nil, fromCUE(err)
	}
	c := &checker{
		user:   uv,
		val:    sv.LookupPath(cue.ParsePath("#Layout")).Unify(uv),
		layout: &Layout{},
	}
	for _, o := range opts {
		o(c)
	}
	c.errs = append(c.errs, fromCUE(c.val.Validate(cue.Concrete(true)))...)
	c.check()
	if len(c.errs) > 0 {
		c.errs.sort()
		return nil, c.errs
	}
	return c.layout, nil
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
		path := strings.TrimPrefix(strings.Join(e.Path(), "."), "#Layout.")
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
		x := &Error{Pos: pos, Path: path, Msg: msg}
		byPath[path] = x
		out = append(out, x)
	}
	return out
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
