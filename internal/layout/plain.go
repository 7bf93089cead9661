package layout

import (
	"reflect"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// A layout is most often plain data: fields whose values are strings,
// integers, booleans, lists and structs written out, in one file or
// several. Once CUE has validated such a layout against the schema, its
// value is those fields together with the schema's defaults, and
// readPlain reads them straight from the syntax, which costs a fraction
// of walking the evaluated value. Anything else (a reference, a
// comprehension, an interpolation, a definition, a float...) is left
// to CUE: readPlain reports false, and the value is decoded instead.

// written are the fields the operator wrote, by name, each with the
// fields (or list indexes) written below it.
type written map[string]written

// sub returns the fields written below name, recording name; n is
// how many there are at least.
func (w written) sub(name string, n int) written {
	s := w[name]
	if s == nil {
		s = make(written, n)
		w[name] = s
	}
	return s
}

// has says whether the operator wrote the value at p.
func (w written) has(p []string) bool {
	for _, s := range p {
		next, ok := w[s]
		if !ok {
			return false
		}
		w = next
	}
	return true
}

// defaults are the schema's defaults: what a value is before the
// operator's fields are read into it.
type defaults struct {
	layout  rawLayout
	entries map[reflect.Type]reflect.Value // of an entry of each map type
}

// newDefaults reads the defaults of the schema s, #Layout.
func newDefaults(s cue.Value) *defaults {
	d := &defaults{entries: map[reflect.Type]reflect.Value{}}
	d.layout = d.of(s, reflect.TypeFor[rawLayout]()).Interface().(rawLayout)
	return d
}

// of returns the value of type t that the schema value s gives when the
// operator writes nothing, recording the defaults of the maps below.
func (d *defaults) of(s cue.Value, t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			v.Field(i).Set(d.of(s.LookupPath(cue.MakePath(cue.Str(jsonName(f)))), f.Type))
		}
	case reflect.Map:
		d.entries[t] = d.of(s.LookupPath(cue.MakePath(cue.AnyString)), t.Elem())
	case reflect.Slice, reflect.Interface:
		// The schema has no default lists or options.
	default:
		if def, _ := s.Default(); def.IsConcrete() && def.Decode(v.Addr().Interface()) != nil {
			v.SetZero()
		}
	}
	return v
}

// jsonName is the name of a raw field in the layout.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// plainReader reads plain layout files into a rawLayout.
type plainReader struct {
	defaults *defaults
	fields   map[reflect.Type]map[string]int // raw struct fields by name
	num      literal.NumInfo
	key      reflect.Value                    // a map key, a string
	elems    map[reflect.Type][]reflect.Value // values to read map entries into
}

// elem returns a value of type t to read a map entry into.
func (r *plainReader) elem(t reflect.Type) reflect.Value {
	free := r.elems[t]
	if len(free) == 0 {
		return reflect.New(t).Elem()
	}
	r.elems[t] = free[:len(free)-1]
	return free[len(free)-1]
}

// done takes back a value from elem: the map has a copy.
func (r *plainReader) done(v reflect.Value) { r.elems[v.Type()] = append(r.elems[v.Type()], v) }

// readPlain reads files into raw, with the schema's defaults d, and
// returns the fields they set. ok is false if the files are not plain
// data; raw is then partly filled. What it reads is the layout's value
// only if CUE finds the layout valid. It uses no CUE value: it can run
// while CUE evaluates the layout.
func readPlain(files []*ast.File, d *defaults, raw *rawLayout) (w written, ok bool) {
	r := &plainReader{defaults: d, fields: map[reflect.Type]map[string]int{},
		key: reflect.New(reflect.TypeFor[string]()).Elem(), elems: map[reflect.Type][]reflect.Value{}}
	*raw = d.layout
	dst := reflect.ValueOf(raw).Elem()
	w = written{}
	for _, f := range files {
		if !r.decls(f.Decls, dst, w) {
			return nil, false
		}
	}
	return w, true
}

// decls reads the fields of a file or struct into dst, a struct or a
// map, recording them in w.
func (r *plainReader) decls(decls []ast.Decl, dst reflect.Value, w written) bool {
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Package, *ast.CommentGroup:
		case *ast.Field:
			if !r.field(d, dst, w) {
				return false
			}
		default:
			return false // an embedding, a let, a comprehension, an import...
		}
	}
	return true
}

func (r *plainReader) field(f *ast.Field, dst reflect.Value, w written) bool {
	name, ok := plainLabel(f.Label)
	if !ok || f.Alias != nil || f.Constraint != token.ILLEGAL || len(f.Attrs) > 0 {
		return false // an alias, an optional or required field, an attribute
	}
	switch dst.Kind() {
	case reflect.Struct:
		i, ok := r.index(dst.Type())[name]
		return ok && r.value(f.Value, dst.Field(i), w, name)
	case reflect.Map:
		elem := r.elem(dst.Type().Elem())
		defer r.done(elem)
		r.key.SetString(name)
		if old := dst.MapIndex(r.key); old.IsValid() {
			elem.Set(old) // the entry is written in several places
		} else {
			elem.Set(r.defaults.entries[dst.Type()])
		}
		if !r.value(f.Value, elem, w, name) {
			return false
		}
		r.key.SetString(name) // value may have used it
		dst.SetMapIndex(r.key, elem)
		return true
	}
	return false
}

// plainLabel returns the name of a regular field: an identifier, or an
// ASCII string (CUE normalizes the others).
func plainLabel(l ast.Label) (string, bool) {
	switch l := l.(type) {
	case *ast.Ident:
		if l.Name == "" || l.Name[0] == '#' || l.Name[0] == '_' {
			return "", false // a definition or a hidden field
		}
		return l.Name, true
	case *ast.BasicLit:
		if l.Kind != token.STRING {
			return "", false
		}
		s, err := literal.Unquote(l.Value)
		for i := range len(s) {
			if s[i] >= 0x80 {
				return "", false
			}
		}
		return s, err == nil
	}
	return "", false
}

// index returns the fields of the raw struct type t by name.
func (r *plainReader) index(t reflect.Type) map[string]int {
	m, ok := r.fields[t]
	if !ok {
		m = map[string]int{}
		for i := range t.NumField() {
			m[jsonName(t.Field(i))] = i
		}
		r.fields[t] = m
	}
	return m
}

// value reads the value of field name into dst, recording it in w.
func (r *plainReader) value(x ast.Expr, dst reflect.Value, w written, name string) bool {
	switch x := x.(type) {
	case *ast.StructLit:
		switch dst.Kind() {
		case reflect.Struct:
		case reflect.Map:
			if dst.IsNil() {
				dst.Set(reflect.MakeMapWithSize(dst.Type(), len(x.Elts)))
			}
		default:
			return false
		}
		return r.decls(x.Elts, dst, w.sub(name, len(x.Elts)))
	case *ast.ListLit:
		if dst.Kind() != reflect.Slice {
			return false
		}
		sub := w.sub(name, len(x.Elts))
		list := reflect.MakeSlice(dst.Type(), len(x.Elts), len(x.Elts))
		for i, e := range x.Elts {
			if !r.value(e, list.Index(i), sub, strconv.Itoa(i)) {
				return false
			}
		}
		dst.Set(list)
		return true
	}
	v, ok := r.scalar(x)
	switch {
	case !ok:
		return false
	case dst.Kind() == reflect.Interface:
		dst.Set(v.value())
	case dst.Kind() != v.kind:
		return false
	case v.kind == reflect.String:
		dst.SetString(v.s)
	case v.kind == reflect.Bool:
		dst.SetBool(v.b)
	case dst.OverflowInt(v.n):
		return false
	default:
		dst.SetInt(v.n)
	}
	if _, ok := w[name]; !ok {
		w[name] = nil
	}
	return true
}

// literalValue is a literal string, integer or boolean: kind says
// which.
type literalValue struct {
	kind reflect.Kind // String, Int or Bool
	s    string
	n    int64
	b    bool
}

// value is v as CUE decodes it into an any: a string, an int64, a
// bool.
func (v literalValue) value() reflect.Value {
	switch v.kind {
	case reflect.String:
		return reflect.ValueOf(v.s)
	case reflect.Bool:
		return reflect.ValueOf(v.b)
	}
	return reflect.ValueOf(v.n)
}

// scalar reads a literal string, integer or boolean; ok is false for
// any other expression (a float, null, bytes, a reference...).
func (r *plainReader) scalar(x ast.Expr) (v literalValue, ok bool) {
	neg := false
	if u, ok := x.(*ast.UnaryExpr); ok && u.Op == token.SUB {
		x, neg = u.X, true
	}
	lit, ok := x.(*ast.BasicLit)
	switch {
	case !ok:
		return v, false
	case lit.Kind == token.INT:
		if literal.ParseNum(lit.Value, &r.num) != nil || !r.num.IsInt() {
			return v, false
		}
		n, err := strconv.ParseInt(r.num.String(), 10, 64)
		if neg {
			n = -n
		}
		return literalValue{kind: reflect.Int, n: n}, err == nil
	case neg:
		return v, false
	case lit.Kind == token.STRING:
		q, start, _, err := literal.ParseQuotes(lit.Value, lit.Value)
		if err != nil || !q.IsDouble() {
			return v, false // bytes
		}
		s, err := q.Unquote(lit.Value[start:])
		return literalValue{kind: reflect.String, s: s}, err == nil
	case lit.Kind == token.TRUE, lit.Kind == token.FALSE:
		return literalValue{kind: reflect.Bool, b: lit.Kind == token.TRUE}, true
	}
	return v, false
}
