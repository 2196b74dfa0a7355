package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
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
