package load

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
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
}

// Generator is a running load; read its Counts at any time, and Stop it when done.
type Generator struct {
	req    *http.Request // cloned with a fresh context for each call
	rate   int
	client *http.Client

	stop     context.CancelFunc
	done     chan struct{} // closed once the schedule ended and every request returned
	stopOnce sync.Once

	mu     sync.Mutex
	counts Counts
}

// Start validates o and starts calling; the load runs until ctx is done or Stop is called.
func Start(ctx context.Context, o Options) (*Generator, error) {
	if o.Rate < 1 || o.Rate > MaxRate {
		return nil, fmt.Errorf("rate %d must be between 1 and %d requests per second", o.Rate, MaxRate)
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
	runCtx, stop := context.WithCancel(ctx)
	g := &Generator{
		req:  req,
		rate: o.Rate,
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		stop:   stop,
		done:   make(chan struct{}),
		counts: newCounts(),
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
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * float64(g.rate))
		for ; sent < due; sent++ {
			select {
			case slots <- struct{}{}:
				inFlight.Go(func() {
					defer func() { <-slots }()
					g.call(reqCtx)
				})
			default:
				g.mu.Lock()
				g.counts.Skipped++
				g.mu.Unlock()
			}
		}
	}
}

// call makes one request and records what it got.
func (g *Generator) call(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := g.client.Do(g.req.Clone(ctx))
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
		return
	}
	version := resp.Header.Get("X-Version")
	c.ByVersion[version]++
	c.ByCode[resp.StatusCode]++
	if c.ByVersionCode[version] == nil {
		c.ByVersionCode[version] = map[int]int{}
	}
	c.ByVersionCode[version][resp.StatusCode]++
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
	return c
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
	return d
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
