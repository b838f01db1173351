package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/parser"
)

// judgeChanges wraps a custom rule so that an UPDATE is refused only for
// what it changes: an object that already broke the rule (it predates the
// rule) may still have its metadata changed, its finalizers removed or its
// status written, as long as its spec stays as it was. An update that makes
// a passing object fail, or that changes the spec of a failing one, is
// judged in full. The rule is also evaluated against oldObject, which needs
// the expression rewritten to read oldObject where it reads object; a rule
// that reads oldObject or request.operation itself already says what it
// wants of updates and is left alone, as is one that does not parse (the
// hub's admission refuses it).
func judgeChanges(expr string) string {
	old, ok := onOldObject(expr)
	if !ok {
		return expr
	}
	const specSame = "(!has(object.spec) || (has(oldObject.spec) && object.spec == oldObject.spec))"
	return fmt.Sprintf("(%s) || (oldObject != null && %s && !(%s))", expr, specSame, old)
}

// onOldObject rewrites expr to read oldObject where it reads object, from
// the positions of the identifiers in its syntax tree; false when expr does
// not parse or already reads oldObject or request.operation.
func onOldObject(expr string) (string, bool) {
	p, err := parser.NewParser(parser.Macros(parser.AllMacros...), parser.EnableOptionalSyntax(true))
	if err != nil {
		return "", false
	}
	tree, errs := p.Parse(common.NewTextSource(expr))
	if len(errs.GetErrors()) > 0 {
		return "", false
	}
	var offsets []int
	seen := map[int32]bool{}
	readsOld := false
	ast.PreOrderVisit(tree.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			switch e.AsIdent() {
			case "oldObject":
				readsOld = true
			case "object":
				if r, ok := tree.SourceInfo().GetOffsetRange(e.ID()); ok && !seen[r.Start] {
					seen[r.Start] = true
					offsets = append(offsets, int(r.Start))
				}
			}
		case ast.SelectKind:
			s := e.AsSelect()
			if s.FieldName() == "operation" && s.Operand().Kind() == ast.IdentKind && s.Operand().AsIdent() == "request" {
				readsOld = true
			}
		}
	}))
	if readsOld || len(offsets) == 0 {
		return "", false
	}
	// Offsets count code points; rewrite from the end so earlier ones hold.
	runes := []rune(expr)
	sort.Sort(sort.Reverse(sort.IntSlice(offsets)))
	for _, off := range offsets {
		if off+len("object") > len(runes) || string(runes[off:off+len("object")]) != "object" {
			return "", false
		}
		runes = append(runes[:off], append([]rune("oldObject"), runes[off+len("object"):]...)...)
	}
	return strings.TrimSpace(string(runes)), true
}
