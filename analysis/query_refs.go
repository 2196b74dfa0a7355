package analysis

import (
	"fmt"
	"slices"
	"strings"
	"text/template/parse"
)

// templateBuiltins are the functions text/template defines, which a query template may call.
var templateBuiltins = []string{
	"and", "call", "html", "index", "js", "not", "or", "print", "printf", "println", "urlquery",
}

// checkRefs finds the first reference in a parsed query template to a field, function or
// templateVariables key that Render does not define, so the error can name it and list what
// is known. References through dot are checked where dot is the template's data; inside
// range, with and defined templates, dot is something else and execution reports them.
func checkRefs(trees map[string]*parse.Tree, variables map[string]string) error {
	c := refChecker{variables: variables}
	names := make([]string, 0, len(trees))
	for name := range trees {
		names = append(names, name)
	}
	slices.Sort(names) // the same template reports the same reference first
	for _, name := range names {
		if trees[name].Root == nil {
			continue
		}
		c.dollarIsData = name == queryTemplateName
		c.list(trees[name].Root, c.dollarIsData)
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

type refChecker struct {
	variables    map[string]string
	dollarIsData bool // $ is the template's data in the template run, not in one it calls
	err          error
}

func (c *refChecker) list(l *parse.ListNode, dotIsData bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		c.node(n, dotIsData)
	}
}

func (c *refChecker) node(n parse.Node, dotIsData bool) {
	switch n := n.(type) {
	case *parse.ActionNode:
		c.pipe(n.Pipe, dotIsData)
	case *parse.IfNode:
		c.branch(&n.BranchNode, dotIsData, dotIsData)
	case *parse.RangeNode:
		c.branch(&n.BranchNode, dotIsData, false)
	case *parse.WithNode:
		c.branch(&n.BranchNode, dotIsData, false)
	case *parse.TemplateNode:
		c.pipe(n.Pipe, dotIsData)
	case *parse.ListNode:
		c.list(n, dotIsData)
	}
}

func (c *refChecker) branch(b *parse.BranchNode, dotIsData, dotIsDataInside bool) {
	c.pipe(b.Pipe, dotIsData)
	c.list(b.List, dotIsDataInside)
	c.list(b.ElseList, dotIsData)
}

func (c *refChecker) pipe(p *parse.PipeNode, dotIsData bool) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		c.command(cmd, dotIsData)
	}
}

func (c *refChecker) command(cmd *parse.CommandNode, dotIsData bool) {
	for _, arg := range cmd.Args {
		c.arg(arg, dotIsData)
	}
	// index .Variables "key" returns "" for a missing key, whatever missingkey says.
	if len(cmd.Args) == 3 {
		if fn, ok := cmd.Args[0].(*parse.IdentifierNode); ok && fn.Ident == "index" {
			if key, ok := cmd.Args[2].(*parse.StringNode); ok {
				if ref, ok := c.variablesRef(cmd.Args[1], dotIsData); ok {
					c.key(ref, key.Text)
				}
			}
		}
	}
}

// variablesRef reports whether n is .Variables, $.Variables or variables, and how it is written.
func (c *refChecker) variablesRef(n parse.Node, dotIsData bool) (string, bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		if dotIsData && slices.Equal(n.Ident, []string{variablesField}) {
			return "." + variablesField, true
		}
	case *parse.VariableNode:
		if c.dollarIsData && slices.Equal(n.Ident, []string{"$", variablesField}) {
			return "." + variablesField, true
		}
	case *parse.IdentifierNode:
		if n.Ident == variablesFn {
			return variablesFn, true
		}
	}
	return "", false
}

func (c *refChecker) arg(n parse.Node, dotIsData bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		if dotIsData {
			c.field(n.Ident)
		}
	case *parse.VariableNode:
		if c.dollarIsData && len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.field(n.Ident[1:])
		}
	case *parse.IdentifierNode:
		c.fn(n.Ident, nil)
	case *parse.ChainNode:
		if id, ok := n.Node.(*parse.IdentifierNode); ok {
			c.fn(id.Ident, n.Field)
			return
		}
		c.arg(n.Node, dotIsData)
	case *parse.PipeNode:
		c.pipe(n, dotIsData)
	}
}

// field checks .Field or .Variables.key.
func (c *refChecker) field(ident []string) {
	if ident[0] == variablesField {
		if len(ident) > 1 {
			c.key("."+variablesField, ident[1])
		}
		return
	}
	for _, v := range queryVarList {
		if v.field == ident[0] {
			return
		}
	}
	c.unknown("."+ident[0], false)
}

// fn checks a function, and variables.key.
func (c *refChecker) fn(name string, fields []string) {
	if name == variablesFn {
		if len(fields) > 0 {
			c.key(variablesFn, fields[0])
		}
		return
	}
	if slices.Contains(templateBuiltins, name) || slices.Contains(refusedFuncs, name) {
		return
	}
	for _, v := range queryVarList {
		if v.fn == name {
			return
		}
	}
	c.unknown(name, true)
}

func (c *refChecker) key(variables, key string) {
	if _, ok := c.variables[key]; !ok {
		c.unknown(variables+"."+key, variables == variablesFn)
	}
}

func (c *refChecker) unknown(ref string, flagger bool) {
	if c.err != nil {
		return
	}
	known := make([]string, 0, len(queryVarList)+1)
	for _, v := range queryVarList {
		if flagger {
			known = append(known, v.fn)
		} else {
			known = append(known, "."+v.field)
		}
	}
	if flagger {
		known = append(known, variablesFn+".<key>")
	} else {
		known = append(known, "."+variablesField+".<key>")
	}
	keys := make([]string, 0, len(c.variables))
	for k := range c.variables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	listed := "none"
	if len(keys) > 0 {
		listed = strings.Join(keys, ", ")
	}
	c.err = fmt.Errorf("query template references unknown variable %q (known: %s; templateVariables: %s)",
		ref, strings.Join(known, ", "), listed)
}
