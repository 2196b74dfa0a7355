// Package gen builds the objects tests start from, the way cert-manager's test/unit/gen does:
// one base object per kind, changed by small named modifiers, so every suite (the planner's
// tables, the routers', the controller's and the CLI's) says only how its object differs.
package gen
