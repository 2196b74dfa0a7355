package load

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// MaxRate bounds Options.Rate: beyond it one process measures itself more than the app.
	MaxRate = 10000
	// maxInFlight bounds the requests outstanding at once; a tick that finds them all busy is
	// counted as Skipped instead of queueing, so the schedule never drifts.
	maxInFlight = 64
	// requestTimeout bounds each request; past it the request counts as an error.
	requestTimeout = 5 * time.Second
	// maxBody is how much of an answer is read, so its connection can be reused.
	maxBody = 1 << 20
	// MaxUsers bounds Options.Users.
	MaxUsers = 10000
)

// Options say whom the users call and how often.
type Options struct {
	// URL is the only address called, e.g. http://127.0.0.1:18080/; redirects are not followed.
	URL string
	// Host is the Host header, which selects the route at the data plane; empty keeps URL's.
	Host string
	// Rate is requests per second, on a fixed schedule, between 1 and MaxRate.
	Rate int
	// Header is added to every request.
	Header http.Header
	// Users, when above 0, plays that many users who keep their cookies, each with a cookie jar
	// of its own, so a Set-Cookie answer reaches the user's later requests, as a browser's would.
	// Request n goes to user n mod Users; a user waits for each answer before sending again, so
	// a request due while its user still waits goes to the next idle user, and is Skipped when
	// none is. Counts.Users then records what each user saw, in order.
	Users int
}

// Generator is a running load; read its Counts at any time, and Stop it when done.
type Generator struct {
	req    *http.Request // cloned with a fresh context for each call
	rate   int
	client *http.Client
	// users are the clients of Options.Users, each with its own cookie jar; nil without them.
	users []*http.Client
	// waiting marks the users whose request is in flight.
	waiting []atomic.Bool
	start   time.Time

	stop     context.CancelFunc
	done     chan struct{} // closed once the schedule ended and every request returned
	stopOnce sync.Once

	mu       sync.Mutex
	counts   Counts
	failures []string
	// sent tracks the requests sent since the last Barrier, so the next one can wait for them.
	sent *sync.WaitGroup
}

// maxFailures bounds the failures kept for Failures.
const maxFailures = 20

// Start validates o and starts calling; the load runs until ctx is done or Stop is called.
func Start(ctx context.Context, o Options) (*Generator, error) {
	if o.Rate < 1 || o.Rate > MaxRate {
		return nil, fmt.Errorf("rate %d must be between 1 and %d requests per second", o.Rate, MaxRate)
	}
	if o.Users < 0 || o.Users > MaxUsers {
		return nil, fmt.Errorf("users %d must be between 0 and %d", o.Users, MaxUsers)
	}
	req, err := http.NewRequest(http.MethodGet, o.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, fmt.Errorf("URL %q must be absolute, with scheme http or https", o.URL)
	}
	for k, vs := range o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if o.Host != "" {
		req.Host = o.Host
	}

	transport := &http.Transport{
		Proxy:               nil, // the URL is called directly, whatever HTTP_PROXY says
		DialContext:         (&net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxInFlight,
		MaxIdleConnsPerHost: maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	noRedirects := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	runCtx, stop := context.WithCancel(ctx)
	g := &Generator{
		req:    req,
		rate:   o.Rate,
		client: &http.Client{Transport: transport, CheckRedirect: noRedirects},
		stop:   stop,
		done:   make(chan struct{}),
		counts: newCounts(),
		sent:   &sync.WaitGroup{},
	}
	if o.Users > 0 {
		g.counts.Users = make([]User, o.Users)
		for range o.Users {
			// A jar without a public suffix list keeps host-only cookies, which is all a user
			// calling one address needs.
			jar, err := cookiejar.New(nil)
			if err != nil {
				stop()
				return nil, err
			}
			// The users share the connections: a user is its cookies, not a socket.
			g.users = append(g.users, &http.Client{Transport: transport, CheckRedirect: noRedirects, Jar: jar})
		}
		g.waiting = make([]atomic.Bool, o.Users)
	}
	go g.run(runCtx)
	return g, nil
}

// Stop ends the schedule and waits for the requests in flight, at most the request timeout;
// their answers are counted. It may be called more than once.
func (g *Generator) Stop() {
	g.stopOnce.Do(g.stop)
	<-g.done
	g.client.CloseIdleConnections()
}

// run issues request n at Start + n/rate. Ticks only wake it up: it catches up on the requests
// that are due, so a late tick does not lower the rate.
func (g *Generator) run(ctx context.Context) {
	var inFlight sync.WaitGroup
	defer close(g.done)
	defer inFlight.Wait()

	slots := make(chan struct{}, maxInFlight)
	// Requests outlive a cancelled ctx by design: Stop waits for what users already sent.
	reqCtx := context.WithoutCancel(ctx)
	tick := time.NewTicker(time.Second / time.Duration(g.rate))
	defer tick.Stop()
	g.mu.Lock()
	g.start = time.Now()
	start, sent := g.start, 0
	g.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * float64(g.rate))
		for ; sent < due; sent++ {
			user, ok := g.claimUser(sent)
			if !ok {
				g.skip()
				continue
			}
			select {
			case slots <- struct{}{}:
				g.mu.Lock()
				sent := g.sent
				sent.Add(1)
				g.mu.Unlock()
				inFlight.Go(func() {
					defer func() { <-slots }()
					defer sent.Done() // after the answer is counted
					g.call(reqCtx, user)
				})
			default:
				g.releaseUser(user)
				g.skip()
			}
		}
	}
}

func (g *Generator) skip() {
	g.mu.Lock()
	g.counts.Skipped++
	g.mu.Unlock()
}

// claimUser picks the user who sends request n: user n mod Users or, when they still wait for
// an answer, the next idle one; false when every user waits. Without Options.Users it returns
// -1, nobody in particular.
func (g *Generator) claimUser(n int) (int, bool) {
	if len(g.users) == 0 {
		return -1, true
	}
	for i := range len(g.users) {
		u := (n + i) % len(g.users)
		if g.waiting[u].CompareAndSwap(false, true) {
			return u, true
		}
	}
	return 0, false
}

func (g *Generator) releaseUser(user int) {
	if user >= 0 {
		g.waiting[user].Store(false)
	}
}

// call makes one request, as user (an index into g.users) or, when it is -1, as nobody in
// particular, and records what it got.
func (g *Generator) call(ctx context.Context, user int) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	defer g.releaseUser(user) // after the answer is recorded, so a user's answers stay in order
	client := g.client
	if user >= 0 {
		client = g.users[user]
	}
	resp, err := client.Do(g.req.Clone(ctx))
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		_ = resp.Body.Close()
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	c := &g.counts
	c.Total++
	if err != nil {
		// No answer, or only part of one: the user saw a failure either way.
		c.Errors++
		if len(g.failures) < maxFailures {
			g.failures = append(g.failures, fmt.Sprintf("+%s: %v", time.Since(g.start).Round(time.Millisecond), err))
		}
		return
	}
	version := resp.Header.Get("X-Version")
	c.ByVersion[version]++
	c.ByCode[resp.StatusCode]++
	if c.ByVersionCode[version] == nil {
		c.ByVersionCode[version] = map[int]int{}
	}
	c.ByVersionCode[version][resp.StatusCode]++
	if user >= 0 && version != "" && c.Users[user].saw(version) {
		c.Flips++
	}
}

// Counts are what the users saw since Start. Total counts every request that finished, answered
// or not; the maps count answers only, under the X-Version header ("" when an answer has none).
type Counts struct {
	Total         int
	ByVersion     map[string]int
	ByCode        map[int]int
	ByVersionCode map[string]map[int]int
	// Errors are requests without an answer: refused, reset, or past the request timeout.
	Errors int
	// Skipped are requests the schedule could not send because every in-flight slot was busy;
	// they are not in Total, and a non-zero value means the rate was not held.
	Skipped int
	// Users is what each user of Options.Users saw, by user number; nil without them.
	Users []User
	// Flips counts, over all users, the answers from a different version than the same user's
	// previous answer: a user who was switched between versions.
	Flips int
}

// User is what one user saw: the versions that answered them, in the order the answers
// arrived. Answers without a version (such as an error from the data plane) and requests
// without an answer are not in it: they tell nothing about the version the user is on.
type User struct {
	// Versions is the sequence as runs: {1.0.0 12} {2.0.0 3} is twelve answers from 1.0.0, then
	// three from 2.0.0.
	Versions []Run
	// Flips counts this user's answers from a different version than their previous answer,
	// including the first answer of a period when it differs from the last one before it.
	Flips int
}

// Run is a stretch of consecutive answers from one version.
type Run struct {
	Version string
	N       int
}

// saw records one answer from version and reports whether it is a flip.
func (u *User) saw(version string) bool {
	if n := len(u.Versions); n > 0 && u.Versions[n-1].Version == version {
		u.Versions[n-1].N++
		return false
	}
	u.Versions = append(u.Versions, Run{Version: version, N: 1})
	if len(u.Versions) > 1 {
		u.Flips++
		return true
	}
	return false
}

// Seen lists the distinct versions that answered the user, in the order they first did.
func (u User) Seen() []string {
	var seen []string
	for _, r := range u.Versions {
		if !slices.Contains(seen, r.Version) {
			seen = append(seen, r.Version)
		}
	}
	return seen
}

// sub is what the user saw after an earlier reading of the same user.
func (u User) sub(earlier User) User {
	d := User{Flips: u.Flips - earlier.Flips}
	k := len(earlier.Versions)
	if k == 0 || k > len(u.Versions) {
		d.Versions = slices.Clone(u.Versions)
		return d
	}
	// The earlier reading is a prefix: its last run may have grown since.
	if first := (Run{Version: u.Versions[k-1].Version, N: u.Versions[k-1].N - earlier.Versions[k-1].N}); first.N > 0 {
		d.Versions = append(d.Versions, first)
	}
	d.Versions = append(d.Versions, u.Versions[k:]...)
	return d
}

func newCounts() Counts {
	return Counts{ByVersion: map[string]int{}, ByCode: map[int]int{}, ByVersionCode: map[string]map[int]int{}}
}

// Counts returns a copy of the counts so far.
func (g *Generator) Counts() Counts {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.counts
	c.ByVersion = maps.Clone(c.ByVersion)
	c.ByCode = maps.Clone(c.ByCode)
	c.ByVersionCode = make(map[string]map[int]int, len(g.counts.ByVersionCode))
	for v, codes := range g.counts.ByVersionCode {
		c.ByVersionCode[v] = maps.Clone(codes)
	}
	if g.counts.Users != nil {
		c.Users = make([]User, len(g.counts.Users))
		for i, u := range g.counts.Users {
			c.Users[i] = User{Versions: slices.Clone(u.Versions), Flips: u.Flips}
		}
	}
	return c
}

// Barrier returns once every request sent before it was called has been answered (or has
// failed) and counted, so Counts read afterwards hold all of them: a period that starts with a
// Barrier counts only requests sent after it, whatever the route was when earlier ones left.
// It gives up when ctx is done.
func (g *Generator) Barrier(ctx context.Context) error {
	g.mu.Lock()
	before := g.sent
	g.sent = &sync.WaitGroup{}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { before.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Failures describes the first requests that got no answer, with the time since Start, so a
// scenario that finds Counts.Errors can say what they were.
func (g *Generator) Failures() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.failures)
}

// Sub returns the requests that finished between an earlier reading and c, so that a scenario
// can judge one period, such as a single rollout step. Keys that did not change are left out.
func (c Counts) Sub(earlier Counts) Counts {
	d := newCounts()
	d.Total = c.Total - earlier.Total
	d.Errors = c.Errors - earlier.Errors
	d.Skipped = c.Skipped - earlier.Skipped
	d.ByVersion = subMap(c.ByVersion, earlier.ByVersion)
	d.ByCode = subMap(c.ByCode, earlier.ByCode)
	for v, codes := range c.ByVersionCode {
		if diff := subMap(codes, earlier.ByVersionCode[v]); len(diff) > 0 {
			d.ByVersionCode[v] = diff
		}
	}
	d.Flips = c.Flips - earlier.Flips
	if c.Users != nil {
		d.Users = make([]User, len(c.Users))
		for i, u := range c.Users {
			var before User
			if i < len(earlier.Users) {
				before = earlier.Users[i]
			}
			d.Users[i] = u.sub(before)
		}
	}
	return d
}

// Switched lists the users who saw more than one version in the period, by user number.
func (c Counts) Switched() []int {
	var out []int
	for i, u := range c.Users {
		if len(u.Seen()) > 1 {
			out = append(out, i)
		}
	}
	return out
}

// UsersOn counts the users who saw version, and no other, in the period.
func (c Counts) UsersOn(version string) int {
	n := 0
	for _, u := range c.Users {
		if seen := u.Seen(); len(seen) == 1 && seen[0] == version {
			n++
		}
	}
	return n
}

func subMap[K comparable](later, earlier map[K]int) map[K]int {
	d := map[K]int{}
	for k, n := range later {
		if diff := n - earlier[k]; diff != 0 {
			d[k] = diff
		}
	}
	return d
}

// Share is the fraction of answers that came from version, 0 when there were none; requests
// without an answer are not in it, ErrorRate accounts for them.
func (c Counts) Share(version string) float64 {
	answered := c.Total - c.Errors
	if answered <= 0 {
		return 0
	}
	return float64(c.ByVersion[version]) / float64(answered)
}

// ErrorRate is the fraction of requests that failed for the user: a 5xx answer or none at all.
func (c Counts) ErrorRate() float64 {
	if c.Total <= 0 {
		return 0
	}
	failed := c.Errors
	for code, n := range c.ByCode {
		if code >= 500 && code <= 599 {
			failed += n
		}
	}
	return float64(failed) / float64(c.Total)
}
