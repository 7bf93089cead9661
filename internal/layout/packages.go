package layout

import (
	"fmt"
	"io/fs"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// sourceFiles are the files of a layout directory.
type sourceFiles struct {
	fsys fs.FS
	dir  string              // the directory as the operator named it
	name func(string) string // a file's name in positions
}

// packageClause is what a layout file says of its package.
type packageClause struct {
	pkg string    // "" if it has no package clause
	pos token.Pos // of the package name, or the file's start
}

// pkg returns the package of the layout: the one most of its .cue files
// belong to (on a tie, the first file's). CUE leaves a file of no
// package or of another package out of the layout without a word, so
// that what it says is never applied: each is an error here. pkg is ""
// when no file has a package clause CUE can read.
func (s sourceFiles) pkg() (pkg string, errs Errors, err error) {
	clauses, err := s.clauses()
	if err != nil {
		return "", nil, err
	}
	count := map[string]int{}
	for _, c := range clauses {
		if c.pkg != "" {
			count[c.pkg]++
		}
	}
	for _, c := range clauses {
		if count[c.pkg] > count[pkg] {
			pkg = c.pkg
		}
	}
	want := pkg
	if want == "" {
		want = "layout"
	}
	for _, c := range clauses {
		switch c.pkg {
		case pkg:
		case "":
			errs = append(errs, &Error{Pos: c.pos, Msg: "the file has no package clause, so it is not part of the layout",
				Hint: fmt.Sprintf("begin it with \"package %s\"", want)})
		default:
			errs = append(errs, &Error{Pos: c.pos, Msg: fmt.Sprintf("the file is package %s, not the layout's package %s, so it is not part of the layout", c.pkg, pkg),
				Hint: fmt.Sprintf("write \"package %s\"", pkg)})
		}
	}
	return pkg, errs, nil
}

// clauses reads the package clause of every .cue file that CUE would
// load: not the hidden ones (.*, _*), nor *_test.cue and *_tool.cue. A
// file whose clause does not parse is left to CUE to report.
func (s sourceFiles) clauses() ([]packageClause, error) {
	entries, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.dir, unwrapPath(err))
	}
	var out []packageClause
	loadable := 0
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".cue") || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") ||
			strings.HasSuffix(n, "_test.cue") || strings.HasSuffix(n, "_tool.cue") {
			continue
		}
		if fi, err := fs.Stat(s.fsys, n); err != nil || fi.IsDir() {
			continue
		}
		loadable++
		data, err := fs.ReadFile(s.fsys, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name(n), unwrapPath(err))
		}
		f, err := parser.ParseFile(s.name(n), data, parser.PackageClauseOnly)
		if err != nil {
			continue
		}
		out = append(out, clauseOf(f, s.name(n), len(data)))
	}
	if loadable == 0 {
		return nil, fmt.Errorf("%s: no .cue files: a layout is a CUE package in a directory", s.dir)
	}
	return out, nil
}

func clauseOf(f *ast.File, name string, size int) packageClause {
	c := packageClause{pkg: f.PackageName(), pos: token.NewFile(name, -1, size).Pos(0, token.NoRelPos)}
	for _, d := range f.Decls {
		if p, ok := d.(*ast.Package); ok && c.pkg != "" {
			c.pos = p.Name.Pos()
		}
	}
	return c
}

// unwrapPath drops the path from a *fs.PathError: the caller names it.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
