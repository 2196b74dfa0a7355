package dataplane

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/internal/testenv"
)

// The suite shares one control plane; each test has its own namespace, its own data plane
// playing a Gateway in that namespace, and its own pods, so tests run in parallel.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// testLogger keeps the data plane quiet unless TEST_LOG=debug.
func testLogger() logr.Logger {
	if os.Getenv("TEST_LOG") == "debug" {
		return zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(-1)))
	}
	return logr.Discard()
}

const (
	waitTimeout = 20 * time.Second
	tick        = 50 * time.Millisecond
	// gatewayName is the Gateway each test's data plane plays, in the test's namespace.
	gatewayName = "public-gw"
	svcPort     = int32(80)
)

// fixture is one test's world: a namespace, a data plane, and a client that talks to it.
type fixture struct {
	t      *testing.T
	ns     string
	dp     *DataPlane
	client *http.Client
	// parent is the parentRef that attaches a route to the data plane's Gateway.
	parent routeMod
}

// newFixture starts a data plane for the Gateway public-gw in a new namespace; mods adjust its
// options, and may clear the Gateway's name and namespace to test the defaults.
func newFixture(t *testing.T, mods ...func(*Options)) *fixture {
	t.Helper()
	ns := env.Namespace(t)
	o := Options{
		Config: env.Config, GatewayName: gatewayName, GatewayNamespace: ns,
		Logger: testLogger().WithValues("test", t.Name()),
	}
	for _, m := range mods {
		m(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dp, err := Start(ctx, o)
	require.NoError(t, err)
	transport := &http.Transport{Proxy: nil}
	t.Cleanup(func() {
		dp.Stop()
		cancel()
		transport.CloseIdleConnections()
	})
	parent := withParent("", gatewayName) // the namespace defaults to the route's
	if o.GatewayNamespace != ns {
		parent = withParent(cmp.Or(o.GatewayNamespace, DefaultGatewayNamespace), cmp.Or(o.GatewayName, DefaultGatewayName))
	}
	return &fixture{t: t, ns: ns, dp: dp, parent: parent, client: &http.Client{
		Transport: transport,
		Timeout:   10 * time.Second,
		// Redirects are what some tests look at.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is what a client got back through the data plane.
type response struct {
	code    int
	body    string
	backend string
	header  http.Header
}

// get sends a request to the data plane with the given Host; extra headers are pairs.
func (f *fixture) get(host, target string, headers ...string) response {
	f.t.Helper()
	return f.do(http.MethodGet, host, target, nil, headers...)
}

func (f *fixture) do(method, host, target string, body io.Reader, headers ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.dp.URL()+target, body)
	require.NoError(f.t, err)
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := f.client.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return response{code: resp.StatusCode, body: string(b), backend: resp.Header.Get("X-Backend"), header: resp.Header}
}

// backend is how X-Backend names a Service of the fixture.
func (f *fixture) backend(service string) string { return f.ns + "/" + service }

// nextIP hands out the pods' loopback addresses, above those the e2e node agent uses.
var nextIP atomic.Int32

func podIP() string {
	n := nextIP.Add(1)
	return fmt.Sprintf("127.100.%d.%d", 200+n/250, n%250+1)
}

// fakePod is a Pod as a kubelet would run it: a Pod object whose status says it runs at a
// loopback address, and an HTTP server there answering with the pod's name and recording
// what it received. A request with ?sleep=<duration> is answered that much later, one with
// ?status=<code> with that status.
type fakePod struct {
	name string
	ns   string
	addr string

	mu       sync.Mutex
	received []*http.Request
}

type podMod func(*corev1.Pod)

func ownedBy(replicaSet string) podMod {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: replicaSet, UID: "c0ffee00-0000-4000-8000-000000000001",
			Controller: ptr.To(true),
		}}
	}
}

// startPod runs a pod labelled app=<app>, Ready or not.
func (f *fixture) startPod(name, app string, ready bool, mods ...podMod) *fakePod {
	f.t.Helper()
	ip := podIP()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(f.t, err)
	p := &fakePod{name: name, ns: f.ns, addr: ln.Addr().String()}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	f.t.Cleanup(func() { _ = srv.Close() })

	port := int32(ln.Addr().(*net.TCPAddr).Port)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "demoapp:1.0.0",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}},
		}}},
	}
	for _, m := range mods {
		m(pod)
	}
	ctx := context.Background()
	require.NoError(f.t, env.Client.Create(ctx, pod))
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "127.0.0.1", PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: conditionStatus(ready), LastTransitionTime: metav1.Now()}},
	}
	require.NoError(f.t, env.Client.Status().Update(ctx, pod))
	return p
}

// setReady changes a pod's Ready condition, as a kubelet would after a probe.
func (f *fixture) setReady(p *fakePod, ready bool) {
	f.t.Helper()
	require.NoError(f.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod := &corev1.Pod{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.ns, Name: p.name}, pod); err != nil {
			return err
		}
		pod.Status.Conditions[0].Status = conditionStatus(ready)
		return env.Client.Status().Update(context.Background(), pod)
	}))
}

func conditionStatus(ok bool) corev1.ConditionStatus {
	if ok {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func (p *fakePod) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.received = append(p.received, r.Clone(context.Background()))
	p.mu.Unlock()
	if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-Version", "1.0.0")
	if code, err := strconv.Atoi(r.URL.Query().Get("status")); err == nil {
		w.WriteHeader(code)
	}
	fmt.Fprint(w, p.name)
}

// requests is what the pod has received so far.
func (p *fakePod) requests() []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*http.Request(nil), p.received...)
}

// service creates a Service selecting app=<app>, port 80 to the pods' port named http.
func (f *fixture) service(name, app string) {
	f.t.Helper()
	require.NoError(f.t, env.Client.Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: "http", Port: svcPort, TargetPort: intstr.FromString("http")}},
		},
	}))
}

// route creates an HTTPRoute in the fixture's namespace, attached to its Gateway, and deletes
// it when the test ends.
func (f *fixture) route(name string, mods ...routeMod) *gatewayv1.HTTPRoute {
	f.t.Helper()
	r := newRoute(f.ns, name, append([]routeMod{f.parent}, mods...)...)
	r.Generation = 0
	require.NoError(f.t, env.Client.Create(context.Background(), r))
	// Gone before the next test, which may play the same Gateway (go test -count=2).
	f.t.Cleanup(func() { _ = client.IgnoreNotFound(env.Client.Delete(context.Background(), r)) })
	return r
}

// updateRoute changes a route's spec, retrying on conflicts.
func (f *fixture) updateRoute(name string, mutate func(*gatewayv1.HTTPRoute)) *gatewayv1.HTTPRoute {
	f.t.Helper()
	r := &gatewayv1.HTTPRoute{}
	require.NoError(f.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, r); err != nil {
			return err
		}
		mutate(r)
		return env.Client.Update(context.Background(), r)
	}))
	return r
}

func (f *fixture) getRoute(name string) *gatewayv1.HTTPRoute {
	f.t.Helper()
	r := &gatewayv1.HTTPRoute{}
	require.NoError(f.t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, r))
	return r
}

// ourParent is the data plane's entry in a route's status, or nil.
func ourParent(r *gatewayv1.HTTPRoute) *gatewayv1.RouteParentStatus {
	for i := range r.Status.Parents {
		if r.Status.Parents[i].ControllerName == gatewayv1.GatewayController(DefaultControllerName) {
			return &r.Status.Parents[i]
		}
	}
	return nil
}

// waitAccepted waits until the data plane reports the route's current generation Accepted,
// which also means its routing table has loaded that generation, and returns the route.
func (f *fixture) waitAccepted(name string) *gatewayv1.HTTPRoute {
	f.t.Helper()
	var last *gatewayv1.HTTPRoute
	ok := assert.Eventually(f.t, func() bool {
		last = f.getRoute(name)
		p := ourParent(last)
		if p == nil {
			return false
		}
		c := meta.FindStatusCondition(p.Conditions, string(gatewayv1.RouteConditionAccepted))
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == last.Generation
	}, waitTimeout, tick, "route %s was not accepted", name)
	if !ok {
		f.t.Fatalf("route %s/%s status: %+v", f.ns, name, last.Status)
	}
	return last
}

// waitServed waits until a request to host reaches backend with a 200: the data plane has
// seen the route and a Ready pod.
func (f *fixture) waitServed(host, target, backend string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		r := f.get(host, target)
		return r.code == http.StatusOK && r.backend == backend
	}, waitTimeout, tick, "%s%s is not served by %s", host, target, backend)
}

// sample is one series scraped from the metrics endpoint: a counter's value, or a histogram's
// count.
type sample struct {
	labels map[string]string
	value  float64
}

// scrape reads the data plane's metrics, by family name.
func (f *fixture) scrape() map[string][]sample {
	f.t.Helper()
	resp, err := f.client.Get("http://" + f.dp.MetricsAddr() + "/metrics")
	require.NoError(f.t, err)
	defer resp.Body.Close()
	require.Equal(f.t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(f.t, err)
	out := map[string][]sample{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// value finds the one series of a family with exactly these labels; 0 when there is none.
func value(samples []sample, labels map[string]string) float64 {
	for _, s := range samples {
		if len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return s.value
		}
	}
	return 0
}

// count tallies responses by a key, such as the backend or the body.
func count(responses []response, key func(response) string) map[string]int {
	out := map[string]int{}
	for _, r := range responses {
		out[key(r)]++
	}
	return out
}
