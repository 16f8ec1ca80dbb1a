package alerting_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/alerting"
)

func TestEnqueueDeliversEventsInOrderOnceEachAcrossARestart(t *testing.T) {
	f := newFixture(t, alerting.Config{})
	ctx := context.Background()
	ev := func(id string) alerting.Event {
		return alerting.Event{Stream: "incidents", ID: id, Body: json.RawMessage(`{"n":"` + id + `"}`)}
	}
	f.rcv.fail = context.DeadlineExceeded // the receiver is down
	require.NoError(t, f.m.Enqueue(ctx, alerting.ReceiverLog, ev("1")))
	require.NoError(t, f.m.Enqueue(ctx, alerting.ReceiverLog, ev("2")))
	f.step(0)
	f.restart()
	// A sender that crashed before recording what it enqueued sends it again.
	require.NoError(t, f.m.Enqueue(ctx, alerting.ReceiverLog, ev("2")))
	require.NoError(t, f.m.Enqueue(ctx, alerting.ReceiverLog, ev("3")))
	f.rcv = &recorder{} // up again
	f.restart()
	for range 20 {
		f.step(f.cfg.WithDefaults().Outbox.MaxInterval)
	}
	var bodies []string
	for _, n := range f.rcv.all() {
		require.NotNil(t, n.Event)
		require.Empty(t, n.Alerts)
		bodies = append(bodies, string(n.Event.Body))
	}
	require.Equal(t, []string{`{"n":"1"}`, `{"n":"2"}`, `{"n":"3"}`}, bodies)
}

func TestEnqueueRejectsAnUnknownReceiverAndIncompleteEvents(t *testing.T) {
	f := newFixture(t, alerting.Config{})
	ctx := context.Background()
	cases := []struct {
		name     string
		receiver string
		ev       alerting.Event
		want     string
	}{
		{"an unknown receiver is named", "nowhere", alerting.Event{Stream: "s", ID: "1", Body: json.RawMessage(`{}`)}, `no receiver named "nowhere"`},
		{"a stream is required", alerting.ReceiverLog, alerting.Event{ID: "1", Body: json.RawMessage(`{}`)}, "stream is required"},
		{"an id is required", alerting.ReceiverLog, alerting.Event{Stream: "s", Body: json.RawMessage(`{}`)}, "id is required"},
		{"the body must be JSON", alerting.ReceiverLog, alerting.Event{Stream: "s", ID: "1", Body: json.RawMessage(`{`)}, "not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorContains(t, f.m.Enqueue(ctx, c.receiver, c.ev), c.want)
		})
	}
	counts, err := f.store.OutboxCounts(ctx)
	require.NoError(t, err)
	require.Empty(t, counts, "nothing was queued")
}
