package hooks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/providers/hooks"
)

// token sits in every test URL's query string, as real webhook URLs often carry one, so that
// any message repeating the URL is caught.
const token = "s3cr3t-token-4f9a"

var epoch = time.Unix(1700000000, 0).UTC()

// fakeClock is the Caller's clock and Sleep: a wait moves time on at once and is recorded, so
// that tests see the backoff without waiting for it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func newCaller() (*hooks.Caller, *fakeClock) {
	clock := &fakeClock{now: epoch}
	return &hooks.Caller{Now: clock.Now, Sleep: clock.Sleep, NewID: func() string { return "event-1" }}, clock
}

// received is one request as a receiver saw it.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// receiver is a local webhook answering the given statuses in turn, the last one from then on.
type receiver struct {
	url      string
	mu       sync.Mutex
	requests []received
}

func startReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rec := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		rec.mu.Lock()
		n := len(rec.requests)
		rec.requests = append(rec.requests, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		rec.mu.Unlock()
		w.WriteHeader(statuses[min(n, len(statuses)-1)])
		_, _ = w.Write([]byte("webhook says: " + r.URL.RawQuery))
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL + "/hook?token=" + token
	return rec
}

func (r *receiver) Requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// startHanging is a webhook that takes requests and never answers; arrived gets one value per
// request once its body is read.
func startHanging(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	got := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, so that Close does not wait on the handler
	return srv.URL + "/hook?token=" + token, got
}

// startGarbage is a TCP server that reads a request and answers bytes that are not HTTP.
func startGarbage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
				}
				_, _ = conn.Write([]byte("hello\r\n\r\n"))
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook?token=" + token
}

// closedAddress is a loopback URL nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + "/hook?token=" + token
}

func payload() hooks.Payload {
	return hooks.Payload{
		Name:          "podinfo",
		Namespace:     "shop",
		Type:          "confirm-rollout",
		Phase:         "Progressing",
		Revision:      "7d9c8f",
		Images:        map[string]string{"podinfo": "ghcr.io/stefanprodan/podinfo:6.5.0"},
		CanaryWeight:  10,
		PrimaryWeight: 90,
		Step:          1,
		Steps:         5,
		Metadata:      map[string]string{"cmd": "hey -z 1m http://podinfo-canary.shop/"},
		Time:          epoch,
	}
}

func TestCallOutcomes(t *testing.T) {
	tests := []struct {
		name         string
		url          func(t *testing.T) string
		timeout      time.Duration
		retries      int
		wantOutcome  hooks.Outcome
		wantStatus   int
		wantAttempts int
		wantMessage  string // exact, when the message has no run-dependent detail
		wantPattern  string // otherwise
	}{
		{
			name:         "200 approves",
			url:          func(t *testing.T) string { return startReceiver(t, 200).url },
			wantOutcome:  hooks.Approved,
			wantStatus:   200,
			wantAttempts: 1,
			wantMessage:  `webhook "gate" answered 200 OK`,
		},
		{
			name:         "any 2xx approves",
			url:          func(t *testing.T) string { return startReceiver(t, 204).url },
			wantOutcome:  hooks.Approved,
			wantStatus:   204,
			wantAttempts: 1,
			wantMessage:  `webhook "gate" answered 204 No Content`,
		},
		{
			name:         "403 refuses at once, whatever the retries",
			url:          func(t *testing.T) string { return startReceiver(t, 403).url },
			retries:      3,
			wantOutcome:  hooks.Refused,
			wantStatus:   403,
			wantAttempts: 1,
			wantMessage:  `webhook "gate" answered 403 Forbidden`,
		},
		{
			name:         "a status without a name is given by number",
			url:          func(t *testing.T) string { return startReceiver(t, 499).url },
			retries:      3,
			wantOutcome:  hooks.Refused,
			wantStatus:   499,
			wantAttempts: 1,
			wantMessage:  `webhook "gate" answered 499`,
		},
		{
			name:         "500 is retried, then refuses",
			url:          func(t *testing.T) string { return startReceiver(t, 500).url },
			retries:      2,
			wantOutcome:  hooks.Refused,
			wantStatus:   500,
			wantAttempts: 3,
			wantMessage:  `webhook "gate" answered 500 Internal Server Error (3 attempts)`,
		},
		{
			name:         "429 and 503 are retried until approved",
			url:          func(t *testing.T) string { return startReceiver(t, 429, 503, 200).url },
			retries:      5,
			wantOutcome:  hooks.Approved,
			wantStatus:   200,
			wantAttempts: 3,
			wantMessage:  `webhook "gate" answered 200 OK (3 attempts)`,
		},
		{
			name:         "a receiver that hangs is cut at the timeout",
			url:          func(t *testing.T) string { u, _ := startHanging(t); return u },
			timeout:      100 * time.Millisecond,
			wantOutcome:  hooks.Failed,
			wantAttempts: 1,
			wantMessage:  `webhook "gate" did not answer within 100ms`,
		},
		{
			name:         "a receiver that hangs is retried",
			url:          func(t *testing.T) string { u, _ := startHanging(t); return u },
			timeout:      50 * time.Millisecond,
			retries:      1,
			wantOutcome:  hooks.Failed,
			wantAttempts: 2,
			wantMessage:  `webhook "gate" did not answer within 50ms (2 attempts)`,
		},
		{
			name:         "an answer that is not HTTP fails",
			url:          startGarbage,
			wantOutcome:  hooks.Failed,
			wantAttempts: 1,
			wantPattern:  `^webhook "gate" could not be called: (net/http: .*: )?malformed HTTP response "hello"$`,
		},
		{
			name:         "a refused connection fails, retried",
			url:          closedAddress,
			retries:      1,
			wantOutcome:  hooks.Failed,
			wantAttempts: 2,
			wantPattern:  `^webhook "gate" could not be called: dial tcp 127\.0\.0\.1:\d+: connect: connection refused \(2 attempts\)$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url(t)
			caller, _ := newCaller()
			res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: url, Timeout: tt.timeout, Retries: tt.retries, Payload: payload()})

			assert.Equal(t, tt.wantOutcome, res.Outcome)
			assert.Equal(t, tt.wantStatus, res.Status)
			assert.Equal(t, tt.wantAttempts, res.Attempts)
			if tt.wantMessage != "" {
				assert.Equal(t, tt.wantMessage, res.Message)
			}
			if tt.wantPattern != "" {
				assert.Regexp(t, tt.wantPattern, res.Message)
			}
			assert.NotContains(t, res.Message, token)
			assert.NotContains(t, res.Message, url)
			assert.NotContains(t, res.Message, "/hook")
		})
	}
}

func TestCallReceivesEachAttempt(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		retries   int
		wantHits  int
		wantWaits []time.Duration
	}{
		{name: "approved needs no retry", statuses: []int{200}, retries: 3, wantHits: 1},
		{name: "a 4xx is final", statuses: []int{403}, retries: 3, wantHits: 1},
		{name: "a redirect is a refusal, not followed", statuses: []int{302}, retries: 3, wantHits: 1},
		{name: "5xx waits 1s then 2s", statuses: []int{500}, retries: 2, wantHits: 3, wantWaits: []time.Duration{time.Second, 2 * time.Second}},
		{name: "no retries, one attempt", statuses: []int{500}, retries: 0, wantHits: 1},
		{name: "negative retries, one attempt", statuses: []int{500}, retries: -1, wantHits: 1},
		{
			name: "waits double up to 30s", statuses: []int{503}, retries: 7, wantHits: 8,
			wantWaits: []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second},
		},
		{
			name: "waits stay at 30s however many retries", statuses: []int{500}, retries: 70, wantHits: 71,
			wantWaits: append([]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}, repeat(30*time.Second, 65)...),
		},
		{name: "stops at the first approval", statuses: []int{502, 200}, retries: 5, wantHits: 2, wantWaits: []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := startReceiver(t, tt.statuses...)
			caller, clock := newCaller()
			res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: rec.url, Retries: tt.retries, Payload: payload()})

			assert.Len(t, rec.Requests(), tt.wantHits)
			assert.Equal(t, tt.wantHits, res.Attempts)
			assert.Equal(t, tt.wantWaits, clock.Sleeps())
			var waited time.Duration
			for _, d := range tt.wantWaits {
				waited += d
			}
			assert.Equal(t, waited, res.Duration, "the duration is measured on the injected clock, waits included")
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = d
	}
	return ds
}

func TestCallRedirectIsNotFollowed(t *testing.T) {
	target := startReceiver(t, 200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.url, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)

	caller, _ := newCaller()
	res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: srv.URL + "/?token=" + token, SigningKey: []byte("k"), Payload: payload()})

	assert.Equal(t, hooks.Refused, res.Outcome)
	assert.Equal(t, `webhook "gate" answered 307 Temporary Redirect`, res.Message)
	assert.Empty(t, target.Requests(), "the signed body must not be replayed to the redirect's target")
}

func TestCallTimeoutBoundsTheWait(t *testing.T) {
	url, _ := startHanging(t)
	caller, _ := newCaller()

	start := time.Now()
	res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: url, Timeout: 100 * time.Millisecond, Payload: payload()})
	elapsed := time.Since(start)

	assert.Equal(t, hooks.Failed, res.Outcome)
	assert.GreaterOrEqual(t, elapsed, 100*time.Millisecond, "a call cannot end before its timeout when nothing answers")
	assert.Less(t, elapsed, 5*time.Second, "the request's timeout, not the 10s default, must end the call")
}

func TestCallInvalidURL(t *testing.T) {
	for _, raw := range []string{
		"",
		"hook?token=" + token,
		"/hook?token=" + token,
		"ftp://example.com/hook?token=" + token,
		"http://?token=" + token,
		"http://exa mple.com/hook?token=" + token,
		"http://%zz/hook?token=" + token,
		"mailto:ops@example.com?token=" + token,
	} {
		t.Run(raw, func(t *testing.T) {
			caller, _ := newCaller()
			res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: raw, Payload: payload()})

			assert.Equal(t, hooks.Result{Outcome: hooks.Failed, Message: `webhook "gate" has an invalid URL`}, res)
		})
	}
}

func TestCallCancelled(t *testing.T) {
	t.Run("before the first attempt", func(t *testing.T) {
		rec := startReceiver(t, 200)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		caller, _ := newCaller()
		res := caller.Call(ctx, hooks.Request{Name: "gate", URL: rec.url, Payload: payload()})

		assert.Equal(t, hooks.Result{Outcome: hooks.Failed, Message: `webhook "gate" was cancelled before it answered`}, res)
		assert.Empty(t, rec.Requests())
	})

	t.Run("while waiting to retry", func(t *testing.T) {
		rec := startReceiver(t, 503)
		ctx, cancel := context.WithCancel(t.Context())
		caller, _ := newCaller()
		var waits []time.Duration
		caller.Sleep = func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			cancel()
			return ctx.Err()
		}
		res := caller.Call(ctx, hooks.Request{Name: "gate", URL: rec.url, Retries: 3, Payload: payload()})

		assert.Equal(t, hooks.Failed, res.Outcome)
		assert.Equal(t, 0, res.Status)
		assert.Equal(t, 1, res.Attempts)
		assert.Equal(t, `webhook "gate" was cancelled before it answered`, res.Message)
		assert.Equal(t, []time.Duration{time.Second}, waits)
		assert.Len(t, rec.Requests(), 1)
	})

	t.Run("while the receiver holds the request", func(t *testing.T) {
		url, arrived := startHanging(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			<-arrived
			cancel()
		}()
		caller, _ := newCaller()
		// No retries, so that the attempt itself must tell a cancelled call from a failed one.
		res := caller.Call(ctx, hooks.Request{Name: "gate", URL: url, Timeout: time.Minute, Payload: payload()})

		assert.Equal(t, hooks.Failed, res.Outcome)
		assert.Equal(t, 1, res.Attempts)
		assert.Equal(t, `webhook "gate" was cancelled before it answered`, res.Message)
	})
}

func TestCallSendsPostWithHeaders(t *testing.T) {
	for _, tt := range []struct {
		format          hooks.Format
		wantContentType string
	}{
		{format: "", wantContentType: "application/json"},
		{format: hooks.FormatJSON, wantContentType: "application/json"},
		{format: hooks.FormatCloudEvents, wantContentType: "application/cloudevents+json"},
	} {
		t.Run(string(tt.format), func(t *testing.T) {
			rec := startReceiver(t, 200)
			caller, _ := newCaller()
			r := hooks.Request{Name: "gate", URL: rec.url, Format: tt.format, Payload: payload()}
			res := caller.Call(t.Context(), r)
			require.Equal(t, hooks.Approved, res.Outcome, res.Message)

			reqs := rec.Requests()
			require.Len(t, reqs, 1)
			got := reqs[0]
			assert.Equal(t, http.MethodPost, got.method)
			assert.Equal(t, "/hook", got.path)
			assert.Equal(t, "trafficctl", got.header.Get("User-Agent"))
			assert.Equal(t, tt.wantContentType, got.header.Get("Content-Type"))
			assert.Empty(t, got.header.Get(hooks.SignatureHeader), "no key, no signature")
			assert.Empty(t, got.header.Get(hooks.TimestampHeader))

			want, contentType, err := caller.Body(r)
			require.NoError(t, err)
			assert.Equal(t, tt.wantContentType, contentType)
			assert.Equal(t, string(want), string(got.body), "Body previews the exact bytes sent")
		})
	}
}

func TestCallJSONPayloadAsReceived(t *testing.T) {
	rec := startReceiver(t, 200)
	caller, _ := newCaller()
	sent := payload()
	sent.Type = "rollback"
	sent.Phase = "Failed"
	sent.Iteration = 4
	sent.FailedCheck = &hooks.FailedCheck{Metric: "request-success-rate", Value: "91.2", Bound: ">= 99", Message: "success rate 91.2% is below 99%"}
	res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: rec.url, Payload: sent})
	require.Equal(t, hooks.Approved, res.Outcome, res.Message)

	reqs := rec.Requests()
	require.Len(t, reqs, 1)
	var got hooks.Payload
	require.NoError(t, json.Unmarshal(reqs[0].body, &got))
	assert.Equal(t, sent, got)
}

func TestCallSignsEveryAttempt(t *testing.T) {
	key := []byte("shared-secret")
	rec := startReceiver(t, 500, 200)
	caller, _ := newCaller()
	res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: rec.url, Retries: 1, SigningKey: key, Payload: payload()})
	require.Equal(t, hooks.Approved, res.Outcome, res.Message)

	reqs := rec.Requests()
	require.Len(t, reqs, 2)
	// The clock moves on by the 1s wait, so each attempt carries its own timestamp.
	for i, wantTimestamp := range []string{"1700000000", "1700000001"} {
		got := reqs[i]
		ts := got.header.Get(hooks.TimestampHeader)
		sig := got.header.Get(hooks.SignatureHeader)
		assert.Equal(t, wantTimestamp, ts, "attempt %d", i+1)
		assert.True(t, strings.HasPrefix(sig, "sha256="), "attempt %d: %q", i+1, sig)
		assert.True(t, hooks.Verify(key, ts, sig, got.body), "attempt %d: the receiver verifies the signature", i+1)
		assert.False(t, hooks.Verify([]byte("wrong-secret"), ts, sig, got.body), "attempt %d: a wrong key fails", i+1)
		assert.False(t, hooks.Verify(key, wantTimestamp+"0", sig, got.body), "attempt %d: the timestamp is signed", i+1)
	}
	assert.Equal(t, reqs[0].body, reqs[1].body, "every attempt sends the same body")
}

func TestCallBodyThatCannotBeBuilt(t *testing.T) {
	rec := startReceiver(t, 200)
	caller, _ := newCaller()
	res := caller.Call(t.Context(), hooks.Request{Name: "gate", URL: rec.url, Format: "xml", Payload: payload()})

	assert.Equal(t, hooks.Failed, res.Outcome)
	assert.Equal(t, 0, res.Attempts)
	assert.True(t, strings.HasPrefix(res.Message, `webhook "gate" was not called: unknown format "xml"`), res.Message)
	assert.Empty(t, rec.Requests())
}

func TestCallDefaultSleepHonoursContext(t *testing.T) {
	rec := startReceiver(t, 503)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	caller := &hooks.Caller{} // the real timer: the 1s wait must end with the context

	start := time.Now()
	res := caller.Call(ctx, hooks.Request{Name: "gate", URL: rec.url, Retries: 1, Payload: payload()})

	assert.Equal(t, hooks.Failed, res.Outcome)
	assert.Equal(t, `webhook "gate" was cancelled before it answered`, res.Message)
	assert.Less(t, time.Since(start), time.Second, "the wait must not outlast the context")
	assert.Len(t, rec.Requests(), 1)
}
