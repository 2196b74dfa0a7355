package netguard

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultPolicyRefusesMetadataAndLinkLocal(t *testing.T) {
	p := Default()
	for raw, refused := range map[string]string{
		"http://169.254.169.254/latest/meta-data/": "169.254.169.254 is link-local",
		"http://[fe80::1]:8080/":                   "fe80::1 is link-local",
		"http://[fd00:ec2::254]/":                  "fd00:ec2::254 is refused",
		"http://100.100.100.200/":                  "100.100.100.200 is refused",
		"http://metadata.google.internal/":         "metadata.google.internal is a cloud metadata endpoint",
		"http://Metadata.Google.Internal./x":       "metadata.google.internal is a cloud metadata endpoint",
		"http://[::ffff:169.254.169.254]/":         "169.254.169.254 is link-local",
	} {
		err := p.CheckURL(raw)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), refused, raw)
	}
	for _, ok := range []string{"https://hooks.slack.com/services/x", "http://10.0.0.7:8080/", "http://loadtester.shop/", "http://127.0.0.1:9090"} {
		assert.NoError(t, p.CheckURL(ok), ok)
	}
}

func TestAllowList(t *testing.T) {
	p, err := Parse(DefaultDeny, []string{"10.0.0.0/8", "127.0.0.0/8"})
	require.NoError(t, err)
	assert.NoError(t, p.CheckURL("http://10.1.2.3/"))
	err = p.CheckURL("http://192.168.1.1/")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside the addresses the controller may call (its URL policy allows only 10.0.0.0/8, 127.0.0.0/8)")
	_, err = Parse([]string{"not-a-cidr"}, nil)
	require.ErrorContains(t, err, `"not-a-cidr" is not a CIDR`)
}

// TestTransportRefusesAtDialTime: a name that resolves to a refused address is refused when it is
// dialled, whatever its URL said.
func TestTransportRefusesAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	open, err := Parse(nil, nil)
	require.NoError(t, err)
	c := &http.Client{Transport: open.Transport()}
	resp, err := c.Get("http://localhost:" + port)
	require.NoError(t, err)
	_ = resp.Body.Close()

	closed, err := Parse([]string{"127.0.0.0/8", "::1/128"}, nil)
	require.NoError(t, err)
	assert.NoError(t, closed.CheckURL("http://localhost:"+port), "a name passes the URL check...")
	c = &http.Client{Transport: closed.Transport()}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://localhost:"+port, nil)
	require.NoError(t, err)
	_, err = c.Do(req)
	require.Error(t, err, "...and is refused once resolved")
	assert.Contains(t, err.Error(), "the controller does not call it")
}
