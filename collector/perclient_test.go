package collector_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// holdSlot opens a connection from the loopback address from and sends the
// headers and part of an OTLP body, so that its request is admitted and then
// waits for the rest.
func holdSlot(t *testing.T, base, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nxx")
	require.NoError(t, err)
	return conn
}

// pushFrom posts an OTLP export from the loopback address from.
func pushFrom(t *testing.T, base, from string, body []byte) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}}
	resp, err := c.Post(base+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestOneClientHoldsAtMostItsShareOfIngestSlots: a client holding its
// collector.ingest.max_inflight_per_client slots is pushed back, while
// another client is served from the slots left; once it lets go it is
// served again.
func TestOneClientHoldsAtMostItsShareOfIngestSlots(t *testing.T) {
	cfg := testConfig()
	cfg.Ingest.MaxInflightPerClient = 2
	c := startCollector(t, cfg, "")
	body := otlpProto(t, gaugeMetrics("svc", "per_client", 1, time.Now()))

	held := []net.Conn{holdSlot(t, c.URL, "127.0.0.1"), holdSlot(t, c.URL, "127.0.0.1")}
	require.Eventually(t, func() bool {
		return pushFrom(t, c.URL, "127.0.0.1", body) == http.StatusTooManyRequests
	}, 10*time.Second, 20*time.Millisecond, "the client's third request is pushed back")
	require.Equal(t, http.StatusOK, pushFrom(t, c.URL, "127.0.0.2", body), "another client is served")

	for _, conn := range held {
		require.NoError(t, conn.Close())
	}
	require.Eventually(t, func() bool {
		return pushFrom(t, c.URL, "127.0.0.1", body) == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "served again once its slots are free")
}
