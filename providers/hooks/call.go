package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Request is one webhook call, as the Canary declares it.
type Request struct {
	// Name is the webhook's name in the Canary; messages name the webhook by it, never by URL.
	Name string
	// URL is where the call goes. It never appears in a Result message, since it may carry a
	// token.
	URL string
	// Format is the body's encoding; empty is FormatJSON.
	Format Format
	// Timeout bounds each attempt, answer included; zero or less is 10s.
	Timeout time.Duration
	// Retries is how many further attempts follow a Failed attempt or a 5xx or 429 answer;
	// zero or less makes one attempt only.
	Retries int
	// SigningKey is the HMAC-SHA256 key the receiver shares; empty sends the call unsigned.
	SigningKey []byte
	// Payload is what the call says.
	Payload Payload
}

// Outcome is what a webhook's answer amounts to, with the controller left to decide what each
// means for the rollout.
type Outcome string

const (
	// Approved is a 2xx answer.
	Approved Outcome = "Approved"
	// Refused is an HTTP answer outside 2xx, after any retries the answer allowed.
	Refused Outcome = "Refused"
	// Failed is no usable answer: a timeout, a refused connection, garbage that is not HTTP, an
	// invalid URL, a body that could not be built, or a context the caller cancelled.
	Failed Outcome = "Failed"
)

// Result is what the webhook answered, with a Message safe for events and status: it names
// the webhook, never its URL.
type Result struct {
	Outcome Outcome
	// Status is the HTTP status of the last attempt; 0 when it got no answer, so a Failed
	// result always has 0.
	Status int
	// Attempts counts the requests sent; 0 when none could be (an invalid URL, a context
	// already cancelled).
	Attempts int
	// Duration is from the first attempt to the result, waits included, on the Caller's clock.
	Duration time.Duration
	// Message says what happened in a sentence, e.g. `webhook "approve" answered 403 Forbidden`
	// or `webhook "load" did not answer within 5s (2 attempts)`.
	Message string
}

// Caller makes webhook calls. The zero value is ready to use; its fields exist so that tests
// (and a controller with its own HTTP setup) can replace the network, the clock and the waits.
type Caller struct {
	// Client sends the requests; nil is a default client that follows no redirects and has no
	// overall timeout, each attempt being bounded by Request.Timeout through its context.
	Client *http.Client
	// Sleep waits between attempts and returns early, with an error, when ctx ends; nil waits
	// on a timer. Tests inject it so that they never wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for Payload.Time defaults, signature timestamps and Result.Duration; nil
	// is time.Now.
	Now func() time.Time
	// NewID makes the CloudEvent id; nil is a random UUID.
	NewID func() string
}

const (
	defaultTimeout = 10 * time.Second
	firstWait      = time.Second
	maxWait        = 30 * time.Second
	// maxDrain is how much of an answer's body is read, and dropped, so that the connection
	// can serve the next call; the body itself says nothing the Result reports.
	maxDrain  = 64 << 10
	userAgent = "trafficctl"
)

// defaultClient follows no redirect: a POST turned into a GET by a 302, or a signed body
// replayed to another host by a 307, would both be surprises. A redirect is reported as the
// refusal it is, with its status.
var defaultClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Call posts r.Payload and returns what came back. Retries happen on Failed attempts and on
// 5xx and 429 answers, waiting 1s, 2s, 4s ... (capped at 30s) between attempts through Sleep;
// any other answer is final. Call never returns sooner than the answer and never later than
// about (Retries+1)*Timeout plus the waits; a cancelled ctx ends it with Failed.
func (c *Caller) Call(ctx context.Context, r Request) Result {
	start := c.now()
	res := c.call(ctx, r)
	res.Duration = c.now().Sub(start)
	return res
}

func (c *Caller) call(ctx context.Context, r Request) Result {
	if !validURL(r.URL) {
		return Result{Outcome: Failed, Message: fmt.Sprintf("webhook %q has an invalid URL", r.Name)}
	}
	body, contentType, err := c.Body(r)
	if err != nil {
		return Result{Outcome: Failed, Message: fmt.Sprintf("webhook %q was not called: %v", r.Name, err)}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}

	var last answer
	attempts := 0
	for {
		if ctx.Err() != nil {
			last = answer{cancelled: true}
			break
		}
		attempts++
		last = c.attempt(ctx, r, body, contentType, timeout)
		if !last.retriable() || attempts > r.Retries {
			break
		}
		if err := c.sleep(ctx, backoff(attempts)); err != nil {
			last = answer{cancelled: true}
			break
		}
	}
	return last.result(r, attempts, timeout)
}

// answer is what one attempt got.
type answer struct {
	status    int   // the HTTP status; 0 when there was no answer
	timedOut  bool  // the attempt's own timeout ended it
	cancelled bool  // the caller's context ended it
	err       error // why there was no answer otherwise, free of the URL
}

// retriable tells whether asking again might get a different answer: a server error, a
// throttled request, or no answer at all that the caller did not cause.
func (a answer) retriable() bool {
	switch {
	case a.cancelled:
		return false
	case a.status == 0:
		return true
	default:
		return a.status >= 500 || a.status == http.StatusTooManyRequests
	}
}

func (a answer) result(r Request, attempts int, timeout time.Duration) Result {
	res := Result{Status: a.status, Attempts: attempts}
	var what string
	switch {
	case a.cancelled:
		res.Outcome = Failed
		what = "was cancelled before it answered"
	case a.timedOut:
		res.Outcome = Failed
		what = "did not answer within " + timeout.String()
	case a.status == 0:
		res.Outcome = Failed
		what = "could not be called: " + redact(a.err.Error(), r.URL)
	case a.status >= 200 && a.status < 300:
		res.Outcome = Approved
		what = "answered " + statusText(a.status)
	default:
		res.Outcome = Refused
		what = "answered " + statusText(a.status)
	}
	res.Message = fmt.Sprintf("webhook %q %s", r.Name, what)
	if attempts > 1 {
		res.Message += fmt.Sprintf(" (%d attempts)", attempts)
	}
	return res
}

// attempt sends one request and reads its answer within timeout.
func (c *Caller) attempt(ctx context.Context, r Request, body []byte, contentType string, timeout time.Duration) answer {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return answer{err: withoutURL(err)}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", userAgent)
	if len(r.SigningKey) > 0 {
		ts := strconv.FormatInt(c.now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, Sign(r.SigningKey, ts, body))
	}

	resp, err := c.client().Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return answer{cancelled: true}
		case errors.Is(actx.Err(), context.DeadlineExceeded):
			return answer{timedOut: true}
		default:
			return answer{err: withoutURL(err)}
		}
	}
	// The status is the answer; the body is drained (bounded in size, and in time by actx)
	// only so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	return answer{status: resp.StatusCode}
}

// backoff is the wait after the given number of attempts: 1s, 2s, 4s ... capped at 30s.
func backoff(attempts int) time.Duration {
	d := firstWait
	for i := 1; i < attempts && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// validURL accepts absolute http and https URLs with a host, which is all a webhook can be;
// anything else fails before a request is made, without the URL being repeated anywhere.
func validURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// withoutURL unwraps the *url.Error net/http returns, whose message starts with the whole URL,
// to the error underneath.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact removes the URL from msg should an error underneath *url.Error ever repeat it, a
// guard that costs nothing against a secret ending up in an event.
func redact(msg, rawURL string) string {
	if rawURL == "" {
		return msg
	}
	return strings.ReplaceAll(msg, rawURL, "[webhook URL]")
}

// statusText is "403 Forbidden", or the number alone for a status net/http has no name for.
func statusText(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

func (c *Caller) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return defaultClient
}

func (c *Caller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Caller) newID() string {
	if c.NewID != nil {
		return c.NewID()
	}
	return uuid.NewString()
}

func (c *Caller) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
