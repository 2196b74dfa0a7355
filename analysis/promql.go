package analysis

import (
	"fmt"

	"github.com/prometheus/prometheus/promql/parser"
)

// ParseQuery reports a rendered query that is not PromQL, in the words of Prometheus' own
// parser, so a broken MetricTemplate is told before a query is sent (by lint, offline) or
// instead of Prometheus' bad_data (by the controller).
func ParseQuery(query string) error {
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(query); err != nil {
		return fmt.Errorf("the query is not PromQL: %w", err)
	}
	return nil
}
