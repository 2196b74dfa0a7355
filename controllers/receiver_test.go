package controllers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/hooks"
)

// receiver is a real HTTP server on loopback standing in for a webhook, a load tester or a chat
// service: it records every request and answers as the test says.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	// status is what it answers; hang makes it answer only when the caller gives up.
	status int
	hang   bool
	got    []received
	// inFlight counts requests it is holding.
	inFlight int
}

// received is one request as the receiver saw it.
type received struct {
	Header http.Header
	Body   []byte
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{t: t, status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, received{Header: req.Header.Clone(), Body: body})
	status, hang := r.status, r.hang
	if hang {
		r.inFlight++
	}
	r.mu.Unlock()
	if hang {
		<-req.Context().Done()
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
		return
	}
	w.WriteHeader(status)
}

// URL is where the receiver listens; path tells requests apart in the logs only.
func (r *receiver) URL(path string) string { return r.srv.URL + path }

// answer sets the status code of the answers to come.
func (r *receiver) answer(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.hang = status, false
}

// hangUp makes the receiver hold every request until its caller gives up.
func (r *receiver) hangUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hang = true
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) holding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// payloads decodes the JSON webhook payloads received so far.
func (r *receiver) payloads() []hooks.Payload {
	r.t.Helper()
	var out []hooks.Payload
	for _, q := range r.requests() {
		var p hooks.Payload
		require.NoError(r.t, json.Unmarshal(q.Body, &p), "payload %s", q.Body)
		out = append(out, p)
	}
	return out
}

// waitRequests waits until the receiver has had at least n requests.
func (r *receiver) waitRequests(n int, timeout time.Duration) []received {
	r.t.Helper()
	require.Eventually(r.t, func() bool { return len(r.requests()) >= n }, timeout, 50*time.Millisecond, "the receiver got fewer than %d requests", n)
	return r.requests()
}

// webhook is a Canary webhook of a type, calling the receiver.
func webhook(name string, t v1alpha1.WebhookType, r *receiver) v1alpha1.CanaryWebhook {
	return v1alpha1.CanaryWebhook{Name: name, Type: t, URL: r.URL("/" + name), Timeout: "2s"}
}

func withWebhooks(hs ...v1alpha1.CanaryWebhook) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Webhooks = append(cn.Spec.Analysis.Webhooks, hs...) }
}

// request writes a manual request on the Canary, as trafficctl does.
func (c *cluster) request(action v1alpha1.RequestActionType, id, user string) {
	c.t.Helper()
	raw, err := json.Marshal(v1alpha1.ManualRequest{Action: action, ID: id, User: user, Time: &metav1.Time{Time: time.Now().Truncate(time.Second)}})
	require.NoError(c.t, err)
	c.annotate(string(raw))
}

// annotate writes the request annotation as given.
func (c *cluster) annotate(value string) {
	c.t.Helper()
	cn := c.canary()
	patch := client.MergeFrom(cn.DeepCopy())
	if cn.Annotations == nil {
		cn.Annotations = map[string]string{}
	}
	cn.Annotations[v1alpha1.RequestAnnotation] = value
	require.NoError(c.t, k8s.Patch(context.Background(), cn, patch))
}

func (c *cluster) namedSecret(name string, data map[string]string) {
	c.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns}, StringData: data}
	c.create(s)
}
