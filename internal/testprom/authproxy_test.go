package testprom

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthProxy(t *testing.T) {
	var forwarded atomic.Int32
	var upstreamAuth atomic.Value
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		upstreamAuth.Store(r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, "upstream "+r.URL.Path+" tenant="+r.Header.Get("X-Scope-OrgID"))
	}))
	t.Cleanup(upstream.Close)
	proxy := StartAuthProxy(t, upstream.URL, "s3cret")
	require.True(t, strings.HasPrefix(proxy.URL(), "http://127.0.0.1:"), proxy.URL())

	get := func(authorization string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, proxy.URL()+"/api/v1/query", nil)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", "tenant-a")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}

	code, _ := get("")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = get("Bearer wrong")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = get("Basic czNjcmV0")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, int32(0), forwarded.Load(), "refused requests must not reach the upstream")

	code, body := get("Bearer s3cret")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "upstream /api/v1/query tenant=tenant-a", body)
	assert.Equal(t, int32(1), forwarded.Load())
	assert.Empty(t, upstreamAuth.Load(), "the token is not passed on")

	headers := proxy.Headers()
	require.Len(t, headers, 4)
	for _, h := range headers {
		assert.Equal(t, "tenant-a", h.Get("X-Scope-OrgID"))
	}
	assert.Equal(t, "Bearer s3cret", headers[3].Get("Authorization"))
}
