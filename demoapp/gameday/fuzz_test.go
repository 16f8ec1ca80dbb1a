package gameday_test

import (
	"testing"

	"github.com/burnrate/burnrate/demoapp/gameday"
)

// FuzzParse: any input is a valid scenario or an error, never a panic, and a
// valid one passes its own validation.
func FuzzParse(f *testing.F) {
	f.Add([]byte("name: x\nduration: 1m\nload: {rate: 1}\ntimeline: [{at: 1s, set: {api.latency: 1s}, expect: [{name: a, query: up, within: 1s}]}]\n"))
	f.Add([]byte("name: x\nduration: -1m\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := gameday.Parse(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed scenario fails validation: %v", err)
		}
	})
}
