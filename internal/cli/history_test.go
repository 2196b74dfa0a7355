package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

func TestHistoryAfterAPromotionAndARollback(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setTraffic(suiteHealthy, suiteHealthy)
	h.initialized("podinfo:1.0")

	out, _, err := h.run(newHistoryCommand, "podinfo")
	require.NoError(t, err)
	assert.Equal(t, "podinfo: no rollouts yet; the primary runs the revision it started with ("+h.canary().Status.LastPromotedSpec+").\n", out)

	h.setImage("podinfo:2.0")
	h.waitFor("the rollout of 2.0", statusRolloutTimeout, suitePhaseIs(v1alpha1.PhaseProgressing))
	out, _, err = h.run(newHistoryCommand, "podinfo")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, []string{"REVISION", "IMAGES", "RESULT", "REASON", "WEIGHT", "REACHED", "STARTED", "DURATION"}, strings.Fields(lines[0]))
	current := strings.Fields(lines[1])
	assert.Equal(t, []string{"app=podinfo:2.0", "Progressing"}, current[1:3], "the rollout under way comes first, its phase as its result")
	assert.Equal(t, []string{"so", "far"}, current[len(current)-2:])

	h.waitFor("the promotion of 2.0", statusRolloutTimeout, suitePhaseIs(v1alpha1.PhaseSucceeded))
	h.setTraffic(suiteFailing, suiteHealthy)
	h.setImage("podinfo:3.0")
	cn := h.waitFor("the rollback of 3.0", statusRolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseFailed && len(cn.Status.History) == 2
	})

	out, _, err = h.run(newHistoryCommand, "podinfo")
	require.NoError(t, err)
	t.Log("\n" + out)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	failed, promoted := strings.Fields(lines[1]), strings.Fields(lines[2])
	assert.Equal(t, []string{cn.Status.History[0].Revision, "app=podinfo:3.0", "Failed", "CheckFailed", "10%"}, failed[:5], "newest first")
	assert.Equal(t, []string{cn.Status.History[1].Revision, "app=podinfo:2.0", "Succeeded", "Succeeded", "50%"}, promoted[:5])
	for _, row := range [][]string{failed, promoted} {
		assert.Equal(t, "ago", row[6], "STARTED is an age")
		assert.Regexp(t, `^[0-9]+s$`, row[7], "DURATION is how long the rollout took")
	}
	assert.NotContains(t, out, "Rolled back revision", "the message is a wide column")

	out, _, err = h.run(newHistoryCommand, "podinfo", "-o", "wide")
	require.NoError(t, err)
	assert.Contains(t, out, "request-success-rate is 90, outside >= 99")

	out, _, err = h.run(newHistoryCommand, "podinfo", "-o", "json")
	require.NoError(t, err)
	var view historyView
	require.NoError(t, json.Unmarshal([]byte(out), &view), out)
	assert.Equal(t, h.ns+"/podinfo", view.Canary)
	assert.Nil(t, view.Current, "no rollout is under way")
	require.Len(t, view.Rollouts, 2)
	assert.Equal(t, v1alpha1.PhaseFailed, view.Rollouts[0].Result)
	assert.Equal(t, []string{"app=podinfo:3.0"}, view.Rollouts[0].Images)

	_, _, err = h.run(newHistoryCommand, "podinfo", "-o", "table")
	require.Error(t, err)
	assert.Equal(t, `unknown output format "table": use wide, json or yaml`, err.Error())
	_, _, err = h.run(newHistoryCommand, "nope")
	require.Error(t, err)
	assert.Equal(t, "canary "+h.ns+"/nope not found", err.Error())
}

// TestHistoryRow tables the cells of one record, whatever is missing from it.
func TestHistoryRow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	started := metav1.NewTime(now.Add(-150 * time.Second))
	cases := []struct {
		name    string
		rec     v1alpha1.RolloutRecord
		running bool
		want    []any
	}{
		{
			name: "ended",
			rec: v1alpha1.RolloutRecord{Revision: "abc", Images: []string{"app=podinfo:2.0", "proxy=envoy:1"}, Result: v1alpha1.PhaseSucceeded,
				Reason: "Succeeded", WeightReached: 50, StartedAt: &started, FinishedAt: metav1.NewTime(now.Add(-30 * time.Second)), Message: "done"},
			want: []any{"abc", "app=podinfo:2.0,proxy=envoy:1", "Succeeded", "Succeeded", "50%", "2m30s ago", "2m", "done"},
		},
		{
			name:    "under way",
			rec:     v1alpha1.RolloutRecord{Revision: "def", Result: v1alpha1.PhaseProgressing, StartedAt: &started},
			running: true,
			want:    []any{"def", "-", "Progressing", "-", "0%", "2m30s ago", "2m30s so far", "-"},
		},
		{
			name: "never started",
			rec:  v1alpha1.RolloutRecord{Revision: "ghi", Result: v1alpha1.PhaseFailed, Reason: "WebhookFailed", FinishedAt: metav1.NewTime(now)},
			want: []any{"ghi", "-", "Failed", "WebhookFailed", "0%", "-", "-", "-"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, historyRow(tc.rec, now, tc.running).Cells)
		})
	}
}
