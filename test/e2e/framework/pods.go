package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Requests are what the demo app's pods counted themselves, from their own /metrics: the
// requests to the application that reached them, whoever sent them, and the part of those a
// gateway mirrored (their Host carries the -shadow mark). Unlike the load's counts, they see
// requests no user waits for, which is how a scenario proves mirrored traffic arrived.
type Requests struct {
	Total    int
	Mirrored int
}

// PodRequests are the Requests of each pod of a Deployment, by pod name.
type PodRequests map[string]Requests

// Sum adds up every pod's requests.
func (p PodRequests) Sum() Requests {
	var r Requests
	for _, pr := range p {
		r.Total += pr.Total
		r.Mirrored += pr.Mirrored
	}
	return r
}

// Sub returns the requests the pods counted since an earlier reading; a pod started since then
// counts from zero. A pod gone since then is left out, with what it counted.
func (p PodRequests) Sub(earlier PodRequests) PodRequests {
	d := PodRequests{}
	for pod, r := range p {
		e := earlier[pod]
		d[pod] = Requests{Total: r.Total - e.Total, Mirrored: r.Mirrored - e.Mirrored}
	}
	return d
}

// servingPods are the pods of a Deployment of the app that serve: running, Ready, not being
// deleted, with their address.
func (a *App) servingPods(ctx context.Context, deployment string) ([]corev1.Pod, error) {
	d, err := a.Deployment(ctx, deployment)
	if err != nil {
		return nil, err
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods := &corev1.PodList{}
	if err := a.c.List(ctx, pods, client.InNamespace(a.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, pod := range pods.Items {
		// A pod being deleted still reads Ready until the node agent, which has already stopped
		// its process, finishes the deletion.
		if pod.DeletionTimestamp == nil && pod.Status.PodIP != "" && pod.Status.Phase == corev1.PodRunning && podReady(&pod) {
			out = append(out, pod)
		}
	}
	return out, nil
}

// podURL is the address of a pod's application.
func podURL(pod *corev1.Pod) string {
	port := int32(9898)
	if ports := pod.Spec.Containers[0].Ports; len(ports) > 0 {
		port = ports[0].ContainerPort
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port)))
}

// PodHeaders asks every serving pod of a Deployment of the app directly, and returns the value of
// header each answered with, by pod name: what config each pod runs, say.
func (a *App) PodHeaders(ctx context.Context, deployment, header string) (map[string]string, error) {
	pods, err := a.servingPods(ctx, deployment)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range pods {
		req, err := newGet(ctx, podURL(&pods[i])+"/")
		if err != nil {
			return nil, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			// A pod that stopped serving since it was listed (a rollout moved on) is not asked.
			if gone, lerr := a.stoppedServing(ctx, deployment, pods[i].Name); lerr == nil && gone {
				continue
			}
			return nil, fmt.Errorf("asking pod %s: %w", pods[i].Name, err)
		}
		_ = resp.Body.Close()
		out[pods[i].Name] = resp.Header.Get(header)
	}
	return out, nil
}

// stoppedServing is true when pod leaves the Deployment's serving pods within a few seconds: a
// pod whose process has just stopped is listed until the node agent reports it.
func (a *App) stoppedServing(ctx context.Context, deployment, pod string) (bool, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pods, err := a.servingPods(ctx, deployment)
		if err != nil {
			return false, err
		}
		if !slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Name == pod }) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PodRequests reads the request counters of every running pod of a Deployment of the app, such
// as the canary's pods (Deployment podinfo) or the primary's (podinfo-primary).
func (a *App) PodRequests(ctx context.Context, deployment string) (PodRequests, error) {
	pods, err := a.servingPods(ctx, deployment)
	if err != nil {
		return nil, err
	}
	out := PodRequests{}
	for i := range pods {
		pod := &pods[i]
		r, err := scrapeRequests(ctx, podURL(pod)+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("reading the metrics of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		out[pod.Name] = r
	}
	return out, nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// scrapeRequests reads the demo app's http_requests_total (all codes and methods) and
// http_shadow_requests_total from one pod.
func scrapeRequests(ctx context.Context, url string) (Requests, error) {
	req, err := newGet(ctx, url)
	if err != nil {
		return Requests{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return Requests{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Requests{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return Requests{}, err
	}
	sum := func(name string) int {
		total := 0.0
		if mf, ok := families[name]; ok {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
		return int(total)
	}
	requests, ok := families["http_requests_total"]
	if !ok || len(requests.GetMetric()) == 0 {
		return Requests{}, fmt.Errorf("%s serves no http_requests_total", url)
	}
	return Requests{Total: sum("http_requests_total"), Mirrored: sum("http_shadow_requests_total")}, nil
}
