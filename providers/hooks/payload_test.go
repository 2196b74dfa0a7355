package hooks_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/providers/hooks"
)

func fullPayload() hooks.Payload {
	p := payload()
	p.Type = "event"
	p.Phase = "Failed"
	p.Iteration = 3
	p.FailedCheck = &hooks.FailedCheck{Metric: "latency", Value: "812", Bound: "<= 500", Message: "p99 latency 812ms is above 500ms"}
	p.Event = &hooks.Event{Reason: "RolledBack", Message: "canary rolled back", Severity: "warning"}
	return p
}

// TestBodyJSONFieldNames pins the wire names, which receivers written for Flagger depend on.
func TestBodyJSONFieldNames(t *testing.T) {
	caller, _ := newCaller()
	body, contentType, err := caller.Body(hooks.Request{Payload: fullPayload()})
	require.NoError(t, err)
	assert.Equal(t, "application/json", contentType)

	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, map[string]any{
		"name":          "podinfo",
		"namespace":     "shop",
		"type":          "event",
		"phase":         "Failed",
		"revision":      "7d9c8f",
		"images":        map[string]any{"podinfo": "ghcr.io/stefanprodan/podinfo:6.5.0"},
		"canaryWeight":  10.0,
		"primaryWeight": 90.0,
		"step":          1.0,
		"steps":         5.0,
		"iteration":     3.0,
		"failedCheck":   map[string]any{"metric": "latency", "value": "812", "bound": "<= 500", "message": "p99 latency 812ms is above 500ms"},
		"event":         map[string]any{"reason": "RolledBack", "message": "canary rolled back", "severity": "warning"},
		"metadata":      map[string]any{"cmd": "hey -z 1m http://podinfo-canary.shop/"},
		"time":          "2023-11-14T22:13:20Z",
	}, got)
}

func TestBodyJSONLeavesOutWhatIsUnset(t *testing.T) {
	caller, _ := newCaller()
	body, _, err := caller.Body(hooks.Request{Payload: hooks.Payload{Name: "podinfo", Namespace: "shop", Type: "pre-rollout", Time: epoch}})
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"name": "podinfo", "namespace": "shop", "type": "pre-rollout", "phase": "", "revision": "",
		"canaryWeight": 0, "primaryWeight": 0, "step": 0, "steps": 0,
		"time": "2023-11-14T22:13:20Z"
	}`, string(body))
}

func TestBodyTime(t *testing.T) {
	caller, clock := newCaller()
	clock.now = epoch.Add(90 * time.Second)

	t.Run("zero is the caller's clock", func(t *testing.T) {
		body, _, err := caller.Body(hooks.Request{Payload: hooks.Payload{Name: "podinfo"}})
		require.NoError(t, err)
		var got hooks.Payload
		require.NoError(t, json.Unmarshal(body, &got))
		assert.Equal(t, epoch.Add(90*time.Second), got.Time)
	})

	t.Run("a given time is sent in UTC", func(t *testing.T) {
		local := epoch.In(time.FixedZone("CET", 3600))
		body, _, err := caller.Body(hooks.Request{Payload: hooks.Payload{Name: "podinfo", Time: local}})
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(body, &got))
		assert.Equal(t, "2023-11-14T22:13:20Z", got["time"])
	})
}

func TestBodyCloudEvents(t *testing.T) {
	caller, _ := newCaller()
	sent := fullPayload()
	sent.Type = "confirm-rollout"
	body, contentType, err := caller.Body(hooks.Request{Format: hooks.FormatCloudEvents, Payload: sent})
	require.NoError(t, err)
	assert.Equal(t, "application/cloudevents+json", contentType)

	var e event.Event
	require.NoError(t, e.UnmarshalJSON(body))
	require.NoError(t, e.Validate())
	assert.Equal(t, "1.0", e.SpecVersion())
	assert.Equal(t, "event-1", e.ID())
	assert.Equal(t, "/apis/trafficctl.io/v1alpha1/namespaces/shop/canaries/podinfo", e.Source())
	assert.Equal(t, "io.trafficctl.canary.confirm-rollout", e.Type())
	assert.Equal(t, "podinfo", e.Subject())
	assert.True(t, epoch.Equal(e.Time()), "time %v", e.Time())
	assert.Equal(t, "application/json", e.DataContentType())

	var got hooks.Payload
	require.NoError(t, e.DataAs(&got))
	assert.Equal(t, sent, got)

	// Structured mode: the data is inline JSON, not base64.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &raw))
	assert.NotContains(t, raw, "data_base64")
	assert.Equal(t, byte('{'), raw["data"][0])
}

func TestBodyCloudEventsDefaultIDIsAUUID(t *testing.T) {
	caller := &hooks.Caller{Now: func() time.Time { return epoch }}
	ids := map[string]bool{}
	for range 2 {
		body, _, err := caller.Body(hooks.Request{Format: hooks.FormatCloudEvents, Payload: payload()})
		require.NoError(t, err)
		var e event.Event
		require.NoError(t, e.UnmarshalJSON(body))
		_, err = uuid.Parse(e.ID())
		require.NoError(t, err, "id %q", e.ID())
		ids[e.ID()] = true
	}
	assert.Len(t, ids, 2, "each event gets its own id")
}

func TestBodyErrors(t *testing.T) {
	tests := []struct {
		name    string
		request hooks.Request
		wantErr string
	}{
		{
			name:    "unknown format",
			request: hooks.Request{Format: "xml", Payload: payload()},
			wantErr: `unknown format "xml": want "json" or "cloudevents"`,
		},
		{
			name:    "CloudEvent without a namespace",
			request: hooks.Request{Format: hooks.FormatCloudEvents, Payload: hooks.Payload{Name: "podinfo", Type: "rollout"}},
			wantErr: "a CloudEvent needs the canary's name and namespace and the hook type",
		},
		{
			name:    "CloudEvent without a hook type",
			request: hooks.Request{Format: hooks.FormatCloudEvents, Payload: hooks.Payload{Name: "podinfo", Namespace: "shop"}},
			wantErr: "a CloudEvent needs the canary's name and namespace and the hook type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, _ := newCaller()
			body, contentType, err := caller.Body(tt.request)
			require.EqualError(t, err, tt.wantErr)
			assert.Nil(t, body)
			assert.Empty(t, contentType)
		})
	}
}
