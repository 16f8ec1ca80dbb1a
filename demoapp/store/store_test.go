package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/burnrate/burnrate/demoapp/store"
)

func TestTheRingSpreadsKeysAndMovesFewWhenAShardIsAdded(t *testing.T) {
	four, five := store.NewRing(4), store.NewRing(5)
	per := map[int]int{}
	moved := 0
	const n = 20000
	for i := range n {
		k := fmt.Sprintf("product:%d", i)
		per[four.Shard(k)]++
		if four.Shard(k) != five.Shard(k) {
			moved++
		}
	}
	require.Len(t, per, 4)
	for s, c := range per {
		require.InDelta(t, n/4, c, n/4*0.3, "shard %d holds %d keys", s, c)
	}
	require.Less(t, moved, n*35/100, "about 1/5 of keys move to the new shard, not most of them as with mod N")
	require.Equal(t, four.Shard("cart:ann"), store.NewRing(4).Shard("cart:ann"), "placement is deterministic")
}

func TestAShardKeepsItsDataAcrossARestartAndSurvivesATornWrite(t *testing.T) {
	dir := t.TempDir()
	sh, err := store.OpenShard(dir, 2)
	require.NoError(t, err)
	require.NoError(t, sh.Put("a", []byte(`{"n":1}`)))
	require.NoError(t, sh.Put("a", []byte(`{"n":2}`)))
	require.NoError(t, sh.Put("b", []byte(`"x"`)))
	require.Error(t, sh.Put("c", []byte(`not json`)))
	require.NoError(t, sh.Close())

	// A crash in the middle of an append leaves a torn last line.
	f, err := os.OpenFile(filepath.Join(dir, "shard-2", "data.log"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"k":"c","v":{"tor`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	sh, err = store.OpenShard(dir, 2)
	require.NoError(t, err)
	defer sh.Close()
	v, err := sh.Get("a")
	require.NoError(t, err)
	require.JSONEq(t, `{"n":2}`, string(v))
	require.Equal(t, 2, sh.Len())
	_, err = sh.Get("c")
	require.ErrorIs(t, err, store.ErrNotFound)
}
