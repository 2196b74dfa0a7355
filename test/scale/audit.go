package scale

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// auditPolicy logs, at the Metadata level, every request of users and nothing else; a request
// is logged once, when its response is complete.
func auditPolicy(users ...string) string {
	quoted := make([]string, len(users))
	for i, u := range users {
		quoted[i] = strconv.Quote(u)
	}
	return fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: [%s]
- level: None
`, strings.Join(quoted, ", "))
}

// calls counts API requests by verb and by "verb resource[/subresource]".
type calls struct {
	byVerb     map[string]int
	byResource map[string]int
}

// reads are the requests that read (get and list); watches are counted apart, as they are held
// open rather than made each interval.
func (c calls) reads() int  { return c.byVerb["get"] + c.byVerb["list"] }
func (c calls) writes() int { return c.total() - c.reads() - c.byVerb["watch"] }
func (c calls) total() int {
	n := 0
	for _, v := range c.byVerb {
		n += v
	}
	return n
}

// summary is the counts by resource, most first, for a table cell.
func (c calls) summary() string {
	if len(c.byResource) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(c.byResource))
	for k := range c.byResource {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c.byResource[keys[i]] != c.byResource[keys[j]] {
			return c.byResource[keys[i]] > c.byResource[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", c.byResource[k], k)
	}
	return strings.Join(parts, ", ")
}

// auditLog reads an apiserver's JSON audit log from an offset on.
type auditLog struct{ path string }

// size is where the log ends now.
func (a auditLog) size() (int64, error) {
	st, err := os.Stat(a.path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// auditEvent is what the benchmark reads of one line of the audit log.
type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	Received time.Time `json:"requestReceivedTimestamp"`
}

// resource is "resource[/subresource]".
func (e auditEvent) resource() string {
	if e.ObjectRef == nil {
		return "(none)"
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// events are the requests logged between offsets from and to (to < 0: to the end).
func (a auditLog) events(from, to int64) ([]auditEvent, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	var r io.Reader = f
	if to >= 0 {
		r = io.LimitReader(f, to-from)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var out []auditEvent
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line: %w", err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// count counts the requests logged between offsets from and to.
func (a auditLog) count(from, to int64) (calls, error) {
	c := calls{byVerb: map[string]int{}, byResource: map[string]int{}}
	events, err := a.events(from, to)
	for _, e := range events {
		c.byVerb[e.Verb]++
		c.byResource[e.Verb+" "+e.resource()]++
	}
	return c, err
}
