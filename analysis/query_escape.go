package analysis

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/common/model"
)

// markerPrefix begins the marker that stands in for a value while a query template runs:
// __trafficctl_value_<index>__. A template may not hold it, so every marker in the output
// was put there by a reference to a value.
const markerPrefix = "__trafficctl_value_"

func marker(i int) string { return markerPrefix + strconv.Itoa(i) + "__" }

// readMarker reads the marker that s begins with: its index and its length.
func readMarker(s string) (index, length int, ok bool) {
	rest := s[len(markerPrefix):]
	n := 0
	for n < len(rest) && n < 9 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || !strings.HasPrefix(rest[n:], "__") {
		return 0, 0, false
	}
	index, err := strconv.Atoi(rest[:n])
	if err != nil {
		return 0, 0, false
	}
	return index, len(markerPrefix) + n + 2, true
}

// place replaces the markers in a rendered template with their values. It reads the query as
// the PromQL lexer does, as far as telling strings, comments and the rest apart, and fills
// each value in with the escaping its place needs (see Render).
func (q *queryValues) place(out string) (string, error) {
	var b strings.Builder
	b.Grow(len(out))
	var (
		quote   byte // the quote of the string the scan is in, or 0 outside strings
		regex   bool // the string is the operand of a regex matcher
		comment bool // the scan is in a # comment
		regexOp bool // the last token outside strings and comments was =~ or !~
	)
	for i := 0; i < len(out); {
		if strings.HasPrefix(out[i:], markerPrefix) {
			idx, n, ok := readMarker(out[i:])
			if !ok || idx >= len(q.values) {
				return "", fmt.Errorf("query template changes a value before placing it (with printf, for example), so it cannot be escaped")
			}
			v, err := q.fill(idx, quote, regex)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += n
			if quote == 0 && !comment {
				regexOp = false
			}
			continue
		}
		c := out[i]
		switch {
		case comment:
			comment = c != '\n' && c != '\r'
		case quote == 0:
			switch c {
			case '"', '\'', '`':
				quote, regex, regexOp = c, regexOp, false
			case '#':
				comment = true
			case ' ', '\t', '\n', '\r':
			case '~':
				regexOp = i > 0 && (out[i-1] == '=' || out[i-1] == '!')
			default:
				regexOp = false
			}
		case c == quote:
			quote, regex = 0, false
		case c == '\\' && quote != '`':
			if err := q.checkEscape(out, i+1); err != nil {
				return "", err
			}
			// The escaped byte cannot be a quote that ends the string; the digits some escapes
			// go on with need no care, as they are neither quotes, backslashes nor markers.
			b.WriteByte(c)
			i++
			if i < len(out) {
				b.WriteByte(out[i])
				i++
			}
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), nil
}

// checkEscape refuses a marker in the escape sequence that begins at out[j], just after a
// backslash: the backslash would combine with what the value's escaping writes.
func (q *queryValues) checkEscape(out string, j int) error {
	if j >= len(out) {
		return nil
	}
	digits := 0
	switch c := out[j]; {
	case c == 'x':
		digits = 2
	case c == 'u':
		digits = 4
	case c == 'U':
		digits = 8
	case c >= '0' && c <= '7':
		digits = 2
	}
	for k := j; k <= j+digits && k < len(out); k++ {
		if !strings.HasPrefix(out[k:], markerPrefix) {
			continue
		}
		name := "a value"
		if idx, _, ok := readMarker(out[k:]); ok && idx < len(q.values) {
			name = strconv.Quote(q.names[idx])
		}
		return fmt.Errorf("query template places %s inside an escape sequence (just after a backslash), where it cannot be escaped", name)
	}
	return nil
}

var (
	numberValue   = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	durationValue = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
)

// fill returns value idx as it must be written where it is placed: in a string opened by
// quote, the operand of a regex matcher or not, or outside strings when quote is 0.
func (q *queryValues) fill(idx int, quote byte, regex bool) (string, error) {
	name, v := q.names[idx], q.values[idx]
	if quote == 0 {
		if isNumber(v) || isDuration(v) {
			return v, nil
		}
		return "", fmt.Errorf("variable %q is placed outside a quoted string in the query, so its value must be a number or a duration, such as 0.99 or 5m; got %s",
			name, shorten(v))
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("variable %q is not valid UTF-8: %s", name, shorten(v))
	}
	if regex {
		v = regexp.QuoteMeta(v)
	}
	if quote == '`' {
		// PromQL reads U+FFFD as the mark of invalid UTF-8 and refuses it in a raw string.
		if strings.ContainsAny(v, "`\uFFFD") {
			return "", fmt.Errorf("variable %q is placed in a raw string (`...`) in the query, so its value cannot hold a backtick or U+FFFD; got %s",
				name, shorten(q.values[idx]))
		}
		return v, nil
	}
	return escapeString(v, quote), nil
}

// isNumber reports whether v is a decimal PromQL reads as itself: without a leading zero,
// which would make an integer octal.
func isNumber(v string) bool {
	if !numberValue.MatchString(v) {
		return false
	}
	_, err := strconv.ParseFloat(v, 64)
	return err == nil
}

// isDuration reports whether v is a PromQL duration: units from the largest down, no overflow.
func isDuration(v string) bool {
	if !durationValue.MatchString(v) {
		return false
	}
	_, err := model.ParseDuration(v)
	return err == nil
}

// escapeString escapes v for a PromQL string opened by quote (" or '). Characters that do not
// print are escaped too, so a query reads the same in a status or a log as it does to PromQL.
func escapeString(v string, quote byte) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	for _, r := range v {
		switch {
		case r == '\\' || r == rune(quote):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError || !unicode.IsPrint(r):
			if r < 0x10000 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// shorten quotes a value for an error message, cut to its first 64 bytes.
func shorten(v string) string {
	const limit = 64
	if len(v) <= limit {
		return strconv.Quote(v)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(v[:cut]), len(v))
}
