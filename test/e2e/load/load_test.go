package load

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// server is a loopback app whose answers cycle through versions and codes, and which keeps
// its own tally to check the generator's against.
type server struct {
	*httptest.Server
	arrived chan struct{} // receives once per request, without blocking
	release chan struct{} // when not nil, every answer waits for it to close

	mu    sync.Mutex
	n     int
	tally map[string]map[int]int
	hosts map[string]int
	paths map[string]int
}

func newServer(t *testing.T, release chan struct{}) *server {
	t.Helper()
	s := &server{
		arrived: make(chan struct{}, 1), release: release,
		tally: map[string]map[int]int{}, hosts: map[string]int{}, paths: map[string]int{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// answers is the cycle: version a, b, a failing, and an answer without a version.
var answers = []struct {
	version string
	code    int
}{{"a", 200}, {"b", 200}, {"a", 503}, {"", 200}}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ans := answers[s.n%len(answers)]
	s.n++
	s.hosts[r.Host]++
	s.paths[r.URL.Path]++
	if s.tally[ans.version] == nil {
		s.tally[ans.version] = map[int]int{}
	}
	s.tally[ans.version][ans.code]++
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	if s.release != nil {
		<-s.release
	}
	if ans.version != "" {
		w.Header().Set("X-Version", ans.version)
	}
	w.WriteHeader(ans.code)
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s in 5s", what)
	}
}

func TestGeneratorHoldsTheRateAndRecordsWhatUsersSaw(t *testing.T) {
	srv := newServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	g, err := Start(ctx, Options{URL: srv.URL + "/", Host: "podinfo.example.com", Rate: 200})
	require.NoError(t, err)
	defer g.Stop()
	started := time.Now()
	waitFor(t, srv.arrived, "request")
	mid := g.Counts()
	<-time.After(time.Second - time.Since(started))
	stopping := time.Now()
	g.Stop()
	assert.Less(t, time.Since(stopping), 500*time.Millisecond, "Stop returns once the few requests in flight are answered")
	final := g.Counts()

	assert.InDelta(t, 200, final.Total, 50, "200 requests/s for a second")
	assert.Zero(t, final.Errors)
	assert.Zero(t, final.Skipped)
	srv.mu.Lock()
	assert.Equal(t, srv.n, final.Total, "every request the server saw is counted, none after Stop")
	assert.Equal(t, srv.tally, final.ByVersionCode)
	assert.Equal(t, map[string]int{"podinfo.example.com": srv.n}, srv.hosts)
	assert.Equal(t, map[string]int{"/": srv.n}, srv.paths)
	srv.mu.Unlock()

	sum := func(m map[int]int) int {
		total := 0
		for _, n := range m {
			total += n
		}
		return total
	}
	assert.Equal(t, map[string]int{"a": sum(final.ByVersionCode["a"]), "b": sum(final.ByVersionCode["b"]), "": sum(final.ByVersionCode[""])}, final.ByVersion)
	assert.Equal(t, map[int]int{200: final.Total - final.ByVersionCode["a"][503], 503: final.ByVersionCode["a"][503]}, final.ByCode)
	assert.InDelta(t, 0.5, final.Share("a"), 0.02)
	assert.InDelta(t, 0.25, final.Share("b"), 0.02)
	assert.InDelta(t, 0.25, final.Share(""), 0.02)
	assert.Zero(t, final.Share("c"))
	assert.InDelta(t, 0.25, final.ErrorRate(), 0.02)
	assert.Equal(t, float64(final.ByCode[503])/float64(final.Total), final.ErrorRate())

	later := final.Sub(mid)
	assert.Equal(t, final.Total-mid.Total, later.Total)
	assert.Equal(t, final.ByVersion["a"]-mid.ByVersion["a"], later.ByVersion["a"])
	assert.Equal(t, final.ByCode[503]-mid.ByCode[503], later.ByCode[503])
	assert.Equal(t, later.Total, sum(later.ByCode), "every request of the period is in it once")

	assert.Equal(t, final, g.Counts(), "nothing changes after Stop")
	g.Stop() // a second Stop is harmless
}

func TestCountsIsACopy(t *testing.T) {
	srv := newServer(t, nil)
	g, err := Start(context.Background(), Options{URL: srv.URL, Rate: 100})
	require.NoError(t, err)
	waitFor(t, srv.arrived, "request")
	g.Stop()
	c := g.Counts()
	c.ByVersion["a"] = 1000
	c.ByVersionCode["a"][200] = 1000
	assert.NotEqual(t, 1000, g.Counts().ByVersion["a"])
	assert.NotEqual(t, 1000, g.Counts().ByVersionCode["a"][200])
}

func TestRequestsGoOnlyToTheURLWithTheHeaders(t *testing.T) {
	redirecting := http.NewServeMux()
	var mu sync.Mutex
	paths := map[string]int{}
	arrived := make(chan struct{}, 1)
	redirecting.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.Path+" "+r.Host+" "+r.Header.Get("X-Test")+" "+r.Header.Get("Accept-Encoding")]++
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	srv := httptest.NewServer(redirecting)
	defer srv.Close()

	g, err := Start(context.Background(), Options{
		URL: srv.URL + "/app", Host: "podinfo.example.com", Rate: 100, Header: http.Header{"X-Test": {"yes"}},
	})
	require.NoError(t, err)
	waitFor(t, arrived, "request")
	g.Stop()

	c := g.Counts()
	require.Positive(t, c.Total)
	assert.Equal(t, map[int]int{http.StatusFound: c.Total}, c.ByCode, "a redirect is an answer, not followed")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"/app podinfo.example.com yes ": c.Total}, paths,
		"path, Host and header as configured; no Accept-Encoding, so answers arrive as served")
}

func TestTransportErrorsAreCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now: every connection is refused

	g, err := Start(context.Background(), Options{URL: "http://" + addr + "/", Rate: 100})
	require.NoError(t, err)
	<-time.After(200 * time.Millisecond)
	g.Stop()

	c := g.Counts()
	require.Positive(t, c.Total)
	assert.Equal(t, c.Total, c.Errors)
	assert.Empty(t, c.ByCode)
	failures := g.Failures()
	require.NotEmpty(t, failures)
	assert.LessOrEqual(t, len(failures), maxFailures)
	assert.Contains(t, failures[0], "connection refused", "a failure says what went wrong")
	assert.Equal(t, 1.0, c.ErrorRate())
	assert.Zero(t, c.Share(""), "no answers, so no version has a share")
}

func TestStopWaitsForRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, release)
	g, err := Start(context.Background(), Options{URL: srv.URL, Rate: 100})
	require.NoError(t, err)
	waitFor(t, srv.arrived, "request")

	stopped := make(chan struct{})
	go func() { g.Stop(); close(stopped) }()
	close(release)
	waitFor(t, stopped, "return from Stop")

	c := g.Counts()
	assert.Equal(t, srv.count(), c.Total, "the requests in flight at Stop were answered and counted")
	assert.Zero(t, c.Errors, "Stop does not abort them")
}

// TestBarrierWaitsForWhatWasSentBefore: a Barrier returns only once the requests sent before it are
// counted, so a period read from then on holds none of them.
func TestBarrierWaitsForWhatWasSentBefore(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, release)
	g, err := Start(context.Background(), Options{URL: srv.URL, Rate: 100})
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	waitFor(t, srv.arrived, "request")

	passed := make(chan error, 1)
	go func() { passed <- g.Barrier(context.Background()) }()
	select {
	case err := <-passed:
		t.Fatalf("the barrier returned (%v) while a request sent before it was unanswered", err)
	case <-time.After(200 * time.Millisecond):
	}
	held := g.Counts().Total
	assert.Zero(t, held, "nothing answered yet")
	close(release)
	require.NoError(t, <-passed)
	after := g.Counts().Total
	assert.GreaterOrEqual(t, after, 1, "what was sent before the barrier is counted by the time it returns")

	require.NoError(t, g.Barrier(context.Background()), "answered at once, requests never hold a barrier long")

	hold := make(chan struct{})
	stuck := newServer(t, hold)
	g2, err := Start(context.Background(), Options{URL: stuck.URL, Rate: 100})
	require.NoError(t, err)
	t.Cleanup(func() { close(hold); g2.Stop() }) // before the server closes: cleanups run last first
	waitFor(t, stuck.arrived, "request")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, g2.Barrier(ctx), context.DeadlineExceeded, "a barrier gives up with its context")
}

func TestCancelledContextStopsTheLoad(t *testing.T) {
	srv := newServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	g, err := Start(ctx, Options{URL: srv.URL, Rate: 100})
	require.NoError(t, err)
	waitFor(t, srv.arrived, "request")
	cancel()
	waitFor(t, g.done, "end of the load")
	assert.Equal(t, srv.count(), g.Counts().Total)
	g.Stop()
}

func TestStartRejectsInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"zero rate", Options{URL: "http://127.0.0.1:1/", Rate: 0}},
		{"negative rate", Options{URL: "http://127.0.0.1:1/", Rate: -5}},
		{"rate above the maximum", Options{URL: "http://127.0.0.1:1/", Rate: MaxRate + 1}},
		{"empty URL", Options{Rate: 10}},
		{"unparsable URL", Options{URL: "http://[::1", Rate: 10}},
		{"no scheme", Options{URL: "127.0.0.1:8080/", Rate: 10}},
		{"relative URL", Options{URL: "/path", Rate: 10}},
		{"other scheme", Options{URL: "ftp://127.0.0.1/", Rate: 10}},
		{"no host", Options{URL: "http:///path", Rate: 10}},
		{"negative users", Options{URL: "http://127.0.0.1:1/", Rate: 10, Users: -1}},
		{"users above the maximum", Options{URL: "http://127.0.0.1:1/", Rate: 10, Users: MaxUsers + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Start(context.Background(), tc.o)
			assert.Error(t, err)
			assert.Nil(t, g)
		})
	}
}

func TestCountsArithmetic(t *testing.T) {
	earlier := Counts{
		Total: 10, Errors: 1,
		ByVersion:     map[string]int{"1.0.0": 9},
		ByCode:        map[int]int{200: 9},
		ByVersionCode: map[string]map[int]int{"1.0.0": {200: 9}},
	}
	later := Counts{
		Total: 30, Errors: 2, Skipped: 1,
		ByVersion:     map[string]int{"1.0.0": 19, "2.0.0": 8, "": 1},
		ByCode:        map[int]int{200: 23, 500: 4, 404: 1},
		ByVersionCode: map[string]map[int]int{"1.0.0": {200: 19}, "2.0.0": {200: 4, 500: 4}, "": {404: 1}},
	}
	d := later.Sub(earlier)
	assert.Equal(t, Counts{
		Total: 20, Errors: 1, Skipped: 1,
		ByVersion:     map[string]int{"1.0.0": 10, "2.0.0": 8, "": 1},
		ByCode:        map[int]int{200: 14, 500: 4, 404: 1},
		ByVersionCode: map[string]map[int]int{"1.0.0": {200: 10}, "2.0.0": {200: 4, 500: 4}, "": {404: 1}},
	}, d)
	assert.Equal(t, 10.0/19, d.Share("1.0.0"), "a share of the 19 answers; the error is not one")
	assert.Equal(t, 8.0/19, d.Share("2.0.0"))
	assert.Zero(t, d.Share("3.0.0"))
	assert.Equal(t, 5.0/20, d.ErrorRate(), "four 500s and one request without an answer; a 404 is not an error")

	same := later.Sub(later)
	assert.Zero(t, same.Total)
	assert.Empty(t, same.ByVersion, "unchanged keys are left out")
	assert.Empty(t, same.ByVersionCode)
	assert.Zero(t, same.Share("1.0.0"))
	assert.Zero(t, same.ErrorRate())
	assert.Zero(t, Counts{}.ErrorRate())
	assert.Zero(t, Counts{Total: 3, Errors: 3}.Share(""))
}

// stickyServer pins each user the way a session-affinity route does: a request without its
// cookie gets a new id in a Set-Cookie, and the id decides the version, odd ids a, even ids b.
type stickyServer struct {
	*httptest.Server
	mu       sync.Mutex
	ids      int         // ids handed out
	requests map[int]int // requests by id, the one that got the id included
}

func newStickyServer(t *testing.T) *stickyServer {
	t.Helper()
	s := &stickyServer{requests: map[int]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		id := 0
		if c, err := r.Cookie("user"); err == nil {
			id, _ = strconv.Atoi(c.Value)
		}
		if id == 0 {
			s.ids++
			id = s.ids
			http.SetCookie(w, &http.Cookie{Name: "user", Value: strconv.Itoa(id), MaxAge: 60, Path: "/"})
		}
		s.requests[id]++
		s.mu.Unlock()
		w.Header().Set("X-Version", map[bool]string{true: "a", false: "b"}[id%2 == 1])
	}))
	t.Cleanup(s.Close)
	return s
}

// waitCounts polls the generator until cond holds.
func waitCounts(t *testing.T, g *Generator, what string, cond func(Counts) bool) Counts {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := g.Counts()
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 5s: %+v", what, c.Users)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// everyUser holds when each user's answers in c meet cond.
func everyUser(cond func(User) bool) func(Counts) bool {
	return func(c Counts) bool {
		for _, u := range c.Users {
			if !cond(u) {
				return false
			}
		}
		return len(c.Users) > 0
	}
}

func answered(u User) int {
	n := 0
	for _, r := range u.Versions {
		n += r.N
	}
	return n
}

func TestUsersKeepTheirOwnCookies(t *testing.T) {
	srv := newStickyServer(t)
	g, err := Start(context.Background(), Options{URL: srv.URL + "/", Host: "sticky.example.com", Rate: 300, Users: 6})
	require.NoError(t, err)
	defer g.Stop()
	waitCounts(t, g, "five answers for every user", everyUser(func(u User) bool { return answered(u) >= 5 }))
	g.Stop()
	c := g.Counts()

	srv.mu.Lock()
	defer srv.mu.Unlock()
	assert.Equal(t, 6, srv.ids, "each user asked for a cookie once and sent it back afterwards")
	require.Len(t, c.Users, 6)
	assert.Zero(t, c.Flips)
	assert.Empty(t, c.Switched())
	assert.Equal(t, 3, c.UsersOn("a"), "odd ids are pinned to a: %+v", c.Users)
	assert.Equal(t, 3, c.UsersOn("b"))

	// What each user saw is what the server served under that user's id.
	var perUser, perID []int
	for _, u := range c.Users {
		assert.Len(t, u.Versions, 1, "one version per user")
		assert.Zero(t, u.Flips)
		perUser = append(perUser, answered(u))
	}
	for _, n := range srv.requests {
		perID = append(perID, n)
	}
	slices.Sort(perUser)
	slices.Sort(perID)
	assert.Equal(t, perID, perUser)
	assert.Equal(t, c.Total, srv.requests[1]+srv.requests[2]+srv.requests[3]+srv.requests[4]+srv.requests[5]+srv.requests[6])
}

func TestFlipsAreCountedPerUser(t *testing.T) {
	var version atomic.Value
	version.Store("a")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") == "" {
			w.Header().Set("X-Version", version.Load().(string))
		}
	}))
	defer srv.Close()
	g, err := Start(context.Background(), Options{URL: srv.URL, Rate: 200, Users: 4})
	require.NoError(t, err)
	defer g.Stop()

	lastIs := func(v string, n int) func(User) bool {
		return func(u User) bool {
			k := len(u.Versions)
			return k > 0 && u.Versions[k-1].Version == v && u.Versions[k-1].N >= n
		}
	}
	waitCounts(t, g, "answers from a", everyUser(lastIs("a", 2)))
	version.Store("b")
	onB := waitCounts(t, g, "answers from b", everyUser(lastIs("b", 2)))
	version.Store("a")
	waitCounts(t, g, "answers from a again", everyUser(lastIs("a", 2)))
	g.Stop()
	c := g.Counts()

	assert.Equal(t, 8, c.Flips, "every user went a, b, a: two flips each")
	assert.Equal(t, []int{0, 1, 2, 3}, c.Switched())
	assert.Zero(t, c.UsersOn("a"), "nobody saw a alone")
	for i, u := range c.Users {
		assert.Equal(t, 2, u.Flips, "user %d", i)
		assert.Equal(t, []string{"a", "b"}, u.Seen(), "user %d", i)
		require.Len(t, u.Versions, 3, "user %d: %+v", i, u.Versions)
		assert.Equal(t, []string{"a", "b", "a"}, []string{u.Versions[0].Version, u.Versions[1].Version, u.Versions[2].Version})
	}
	assert.Equal(t, c.Total, answered(c.Users[0])+answered(c.Users[1])+answered(c.Users[2])+answered(c.Users[3]))

	later := c.Sub(onB)
	assert.Equal(t, 4, later.Flips, "since the reading on b, one flip each: back to a")
	for i, u := range later.Users {
		assert.Equal(t, 1, u.Flips, "user %d", i)
		assert.Equal(t, "a", u.Versions[len(u.Versions)-1].Version, "user %d", i)
	}
	assert.Equal(t, later.Total, answered(later.Users[0])+answered(later.Users[1])+answered(later.Users[2])+answered(later.Users[3]))
}

func TestUsersCountsArithmetic(t *testing.T) {
	earlier := Counts{Flips: 1, Users: []User{
		{Versions: []Run{{"a", 3}}},
		{Versions: []Run{{"a", 3}, {"b", 1}}, Flips: 1},
		{Versions: []Run{{"a", 2}}},
		{},
	}}
	later := Counts{Flips: 4, Users: []User{
		{Versions: []Run{{"a", 5}, {"b", 2}}, Flips: 1},
		{Versions: []Run{{"a", 3}, {"b", 4}}, Flips: 1},
		{Versions: []Run{{"a", 2}, {"b", 1}}, Flips: 1},
		{Versions: []Run{{"b", 2}}},
	}}
	d := later.Sub(earlier)
	assert.Equal(t, 3, d.Flips)
	assert.Equal(t, []User{
		{Versions: []Run{{"a", 2}, {"b", 2}}, Flips: 1},
		{Versions: []Run{{"b", 3}}},
		{Versions: []Run{{"b", 1}}, Flips: 1}, // the period's first answer differs from the one before it
		{Versions: []Run{{"b", 2}}},
	}, d.Users)
	assert.Equal(t, []int{0}, d.Switched(), "only user 0 saw two versions within the period")
	assert.Equal(t, 3, d.UsersOn("b"))
	assert.Zero(t, d.UsersOn("a"))
	assert.Equal(t, []string{"a", "b"}, later.Users[0].Seen())
	assert.Nil(t, Counts{}.Sub(Counts{}).Users, "no users without Options.Users")
	assert.Equal(t, fmt.Sprint(later.Users), fmt.Sprint(later.Sub(Counts{}).Users), "a period from the start is everything")
}

func TestAUserWaitsForEachAnswer(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := map[string]int{}, map[string]int{}
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := ""
		if c, err := r.Cookie("user"); err == nil {
			id = c.Value
		} else {
			next++
			id = strconv.Itoa(next)
			http.SetCookie(w, &http.Cookie{Name: "user", Value: id})
		}
		inFlight[id]++
		most[id] = max(most[id], inFlight[id])
		mu.Unlock()
		<-time.After(30 * time.Millisecond)
		mu.Lock()
		inFlight[id]--
		mu.Unlock()
		w.Header().Set("X-Version", "a")
	}))
	defer srv.Close()

	// Two users at 200 requests/s against answers that take 30ms: at most about 66 can be sent.
	g, err := Start(context.Background(), Options{URL: srv.URL, Rate: 200, Users: 2})
	require.NoError(t, err)
	<-time.After(500 * time.Millisecond)
	g.Stop()
	c := g.Counts()

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"1": 1, "2": 1}, most, "no user ever had two requests in flight")
	assert.Positive(t, c.Skipped, "requests due while both users waited were skipped")
	assert.Less(t, c.Total, 50)
	assert.Zero(t, c.Errors)
	assert.Equal(t, c.Total, answered(c.Users[0])+answered(c.Users[1]))
}
