package vmcontainer

import (
	"bufio"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// operations reads api/operations.toml (the subset of TOML it is kept to:
// `[op.NAME]` headers and `key = "value"` lines; the Rust tests reject
// anything else) and returns operation → key → value.
func operations(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "api", "operations.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[op.") && strings.HasSuffix(line, "]"):
			cur = map[string]string{}
			ops[strings.TrimSuffix(strings.TrimPrefix(line, "[op."), "]")] = cur
		case strings.HasPrefix(line, "["):
			cur = nil
		case cur != nil:
			k, v, ok := strings.Cut(line, " = ")
			if !ok {
				t.Fatalf("operations.toml: %q", line)
			}
			cur[k] = strings.Trim(v, `"`)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ops
}

// declared is every exported name of this package's source: functions and
// types as "Name", methods as "Type.Method" (also promoted through an
// embedded struct, one level deep).
func declared(t *testing.T) map[string]bool {
	t.Helper()
	fset := gotoken.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					if d.Recv == nil {
						names[d.Name.Name] = true
						continue
					}
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					if id, ok := recv.(*ast.Ident); ok {
						names[id.Name+"."+d.Name.Name] = true
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
							names[ts.Name.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

func TestEveryListedGoNameExists(t *testing.T) {
	ops := operations(t)
	if len(ops) < 40 {
		t.Fatalf("read only %d operations", len(ops))
	}
	names := declared(t)
	checked := 0
	for op, fields := range ops {
		v, ok := fields["go"]
		if !ok {
			t.Errorf("[op.%s] has no go name", op)
			continue
		}
		if strings.HasPrefix(v, "none:") {
			continue
		}
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if !names[name] {
				t.Errorf("[op.%s]: the Go package has no %s", op, name)
			}
			checked++
		}
	}
	if checked < 50 {
		t.Errorf("only %d Go names checked", checked)
	}
}
