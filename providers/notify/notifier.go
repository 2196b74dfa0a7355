package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Provider types a Target can name.
const (
	typeSlack   = "slack"
	typeMSTeams = "msteams"
	typeDiscord = "discord"
	typeWebhook = "webhook"
)

// defaultTimeout bounds one delivery when the Target sets none: long enough for a slow chat
// service, short enough not to hold up the controller's queue.
const defaultTimeout = 10 * time.Second

// userAgent names the sender in the receiver's logs.
const userAgent = "trafficctl"

// Target is where and how a provider sends, as read from an alert provider and its Secret.
// Address and Token come from the Secret, and Proxy may carry credentials, so no error ever
// contains them.
type Target struct {
	// Type is the provider: "slack", "msteams", "discord" or "webhook".
	Type string
	// Address is the incoming-webhook URL; for most providers it is the credential itself.
	Address string
	// Token is optional; a "webhook" Target sends it as "Authorization: Bearer <token>".
	Token string
	// Proxy is an optional proxy URL for the requests (http, https or socks5); it is ignored
	// when Client is set, since Client then decides how to connect.
	Proxy string
	// Channel optionally overrides the Slack channel of the incoming webhook.
	Channel string
	// Username optionally overrides the name Slack and Discord show as the sender.
	Username string
	// HeadlineTemplate and TextTemplate, when set, are Go text/templates over Message that
	// replace Headline and Text, e.g. "{{ .Namespace }}/{{ .Canary }}: {{ .Reason }}", so a team
	// can word alerts its own way. `field "Name"` returns the value of a field, "" when the
	// message has none. New renders them once over an empty Message to catch a misspelt name.
	HeadlineTemplate, TextTemplate string
	// Client sends the requests, for tests or a shared transport; nil uses a client built for
	// the Target, which honours Proxy and does not follow redirects.
	Client *http.Client
	// Dial, when set, connects the client built for the Target (to its address, or its proxy):
	// the controller's URL policy refuses addresses there.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Timeout bounds one delivery attempt; zero means 10s.
	Timeout time.Duration
}

// Notifier delivers one message to one provider; the controller holds one per alert and calls
// it as events happen.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// encoder formats a message, its templates already applied, as one provider's request body.
type encoder func(t Target, m Message) ([]byte, error)

// encoderFor returns the encoder of a provider type.
func encoderFor(typ string) (encoder, error) {
	switch typ {
	case typeSlack:
		return slackPayload, nil
	case typeMSTeams:
		return teamsPayload, nil
	case typeDiscord:
		return discordPayload, nil
	case typeWebhook:
		return webhookPayload, nil
	default:
		return nil, fmt.Errorf("alert provider type %q is not one of %s, %s, %s, %s",
			typ, typeSlack, typeMSTeams, typeDiscord, typeWebhook)
	}
}

// New validates t and returns its Notifier. Its errors say what to fix in the alert provider
// and never contain Address, Token or Proxy: an unknown type, an empty address, an address
// that is not an absolute http or https URL, a proxy that is not an http, https or socks5 URL,
// or a template that does not parse or names something Message does not have.
func New(t Target) (Notifier, error) {
	enc, err := encoderFor(t.Type)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(t.Address) == "" {
		return nil, fmt.Errorf("%s alert provider has no address", t.Type)
	}
	if !isHTTPURL(t.Address) {
		return nil, fmt.Errorf("%s alert provider address is not an http or https URL", t.Type)
	}
	client := t.Client
	if client == nil {
		client, err = clientFor(t)
		if err != nil {
			return nil, err
		}
	}
	ts, err := parseTemplates(t)
	if err != nil {
		return nil, fmt.Errorf("%s alert provider: %w", t.Type, err)
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return &notifier{target: t, encode: enc, templates: ts, client: client, timeout: timeout}, nil
}

// Payload returns the exact request body (JSON) the Notifier of t would send for m, for tests
// and for `trafficctl` previews. It needs neither Address nor Token, so a preview can run
// without the Secret.
func Payload(t Target, m Message) ([]byte, error) {
	enc, err := encoderFor(t.Type)
	if err != nil {
		return nil, err
	}
	ts, err := parseTemplates(t)
	if err != nil {
		return nil, fmt.Errorf("%s alert provider: %w", t.Type, err)
	}
	return render(t, enc, ts, m)
}

// render applies the templates and encodes the result.
func render(t Target, enc encoder, ts templates, m Message) ([]byte, error) {
	m, err := ts.apply(m)
	if err != nil {
		return nil, fmt.Errorf("%s alert provider: %w", t.Type, err)
	}
	body, err := enc(t, m)
	if err != nil {
		return nil, fmt.Errorf("formatting %s message: %w", t.Type, err)
	}
	return body, nil
}

// isHTTPURL reports whether s is an absolute http or https URL with a host. The parse error
// is dropped: it quotes the URL.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// clientFor builds the client of a Target that brings none: a clone of the default transport
// (so environment proxies still apply when Proxy is empty) with Proxy set when given. It does
// not follow redirects: a webhook that moved answers 3xx, which is reported, rather than a
// POST silently turned into a GET somewhere else.
func clientFor(t Target) (*http.Client, error) {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("the default http transport is not an *http.Transport")
	}
	tr := base.Clone()
	if t.Dial != nil {
		tr.DialContext = t.Dial
	}
	if t.Proxy != "" {
		u, err := url.Parse(t.Proxy)
		if err != nil || u.Host == "" || !isProxyScheme(u.Scheme) {
			// The parse error is dropped: it quotes the proxy URL, which may hold a password.
			return nil, fmt.Errorf("%s alert provider proxy is not an http, https or socks5 URL", t.Type)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// isProxyScheme reports whether net/http can use a proxy of this scheme.
func isProxyScheme(scheme string) bool {
	switch scheme {
	case "http", "https", "socks5", "socks5h":
		return true
	default:
		return false
	}
}

// notifier sends a Target's messages over HTTP; every provider differs only in its encoder and
// headers.
type notifier struct {
	target    Target
	encode    encoder
	templates templates
	client    *http.Client
	timeout   time.Duration
}

var _ Notifier = (*notifier)(nil)

// Notify formats m and POSTs it, bounded by the Target's timeout. A 2xx answer is success.
func (n *notifier) Notify(ctx context.Context, m Message) error {
	body, err := render(n.target, n.encode, n.templates, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.target.Address, bytes.NewReader(body))
	if err != nil {
		// New checked the address; the error would quote it, so it is not passed on.
		return fmt.Errorf("building the %s request failed", n.target.Type)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if n.target.Type == typeWebhook && n.target.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.target.Token)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return n.sendError(err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body itself is never reported, as
	// a receiver may echo the request, secrets and all.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The status text is Go's, not the receiver's reason phrase, which could say anything.
		return fmt.Errorf("%s answered %s", n.target.Type,
			strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))))
	}
	return nil
}

// sendError describes a transport failure without the request URL: a *url.Error is unwrapped
// to its cause, and whatever still quotes a secret (a proxy error may name the proxy) is
// redacted. The cause stays reachable through errors.Is and errors.As.
func (n *notifier) sendError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return &redactedError{
		msg: "sending to " + n.target.Type + ": " + redact(err.Error(), n.target),
		err: err,
	}
}

// redactedError carries a message scrubbed of secrets while keeping its cause for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redacted replaces a secret in an error message.
const redacted = "[redacted]"

// redact removes every secret of t from s, as written and as url-escaped, longest first so a
// secret inside another is not left half-removed.
func redact(s string, t Target) string {
	var secrets []string
	for _, v := range []string{t.Address, t.Token, t.Proxy} {
		if v == "" {
			continue
		}
		secrets = append(secrets, v, url.QueryEscape(v), url.PathEscape(v))
	}
	if u, err := url.Parse(t.Proxy); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p)
		}
		secrets = append(secrets, u.User.String())
	}
	if u, err := url.Parse(t.Address); err == nil {
		// The path and query of a webhook URL carry its token; the host does not.
		for _, v := range []string{u.RawQuery, u.EscapedPath(), u.Path} {
			if len(v) > 1 {
				secrets = append(secrets, v)
			}
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return s
}

// marshal encodes v as compact JSON without escaping <, > and &, so a preview reads as the
// receiver will show it; the output is equally valid JSON.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
