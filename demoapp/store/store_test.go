package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// tear appends half a record to shard id's log, as a crash in the middle of
// an append leaves it.
func tear(t *testing.T, dir string, id int, half string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("shard-%d", id), "data.log"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(half)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestEveryAcknowledgedWriteSurvivesRepeatedCrashesThatTearTheTail(t *testing.T) {
	dir := t.TempDir()
	acked := map[string]string{}
	for crash := range 4 {
		sh, err := store.OpenShard(dir, 0)
		require.NoError(t, err)
		for k, v := range acked {
			got, err := sh.Get(k)
			require.NoError(t, err, "crash %d lost acknowledged key %s", crash, k)
			require.JSONEq(t, v, string(got))
		}
		for i := range 3 {
			k, v := fmt.Sprintf("k%d-%d", crash, i), fmt.Sprintf(`{"crash":%d,"i":%d}`, crash, i)
			require.NoError(t, sh.Put(k, []byte(v)))
			acked[k] = v
		}
		// The process dies without Close, in the middle of the next append.
		tear(t, dir, 0, `{"k":"torn","v":{"half`)
	}
	sh, err := store.OpenShard(dir, 0)
	require.NoError(t, err)
	defer sh.Close()
	require.Equal(t, len(acked), sh.Len())
	_, err = sh.Get("torn")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestTheLogIsCompactedSoItsSizeFollowsTheLiveKeys(t *testing.T) {
	dir := t.TempDir()
	sh, err := store.OpenShardWith(dir, 1, store.ShardOptions{CompactMinLines: 100})
	require.NoError(t, err)
	for i := range 1000 {
		require.NoError(t, sh.Put(fmt.Sprintf("cart:%d", i%10), []byte(fmt.Sprintf(`{"n":%d}`, i))))
	}
	require.LessOrEqual(t, sh.LogLines(), 100, "1000 writes of 10 keys leave at most CompactMinLines lines")
	require.NoError(t, sh.Close())

	st, err := os.Stat(filepath.Join(dir, "shard-1", "data.log"))
	require.NoError(t, err)
	require.Less(t, st.Size(), int64(100*32))

	sh, err = store.OpenShardWith(dir, 1, store.ShardOptions{CompactMinLines: 100})
	require.NoError(t, err)
	defer sh.Close()
	require.Equal(t, 10, sh.Len())
	v, err := sh.Get("cart:9")
	require.NoError(t, err)
	require.JSONEq(t, `{"n":999}`, string(v), "the newest value of each key is kept")
}

func TestALogWithAManyTimesOverwrittenKeyIsCompactedOnOpen(t *testing.T) {
	dir := t.TempDir()
	// A log written without compaction: 300 versions of one key, torn tail.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "shard-0"), 0o750))
	var b []byte
	for i := range 300 {
		b = fmt.Appendf(b, `{"k":"a","v":%d}`+"\n", i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shard-0", "data.log"), append(b, `{"k":"a","v`...), 0o640))
	sh, err := store.OpenShardWith(dir, 0, store.ShardOptions{CompactMinLines: 100})
	require.NoError(t, err)
	defer sh.Close()
	require.Equal(t, 1, sh.LogLines())
	v, err := sh.Get("a")
	require.NoError(t, err)
	require.Equal(t, "299", string(v))
}

func TestReadsAndWritesGoOnWhileTheLogIsFsynced(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	sh, err := store.OpenShardWith(t.TempDir(), 0, store.ShardOptions{
		SyncInterval: 10 * time.Millisecond,
		Sync: func(f *os.File) error {
			once.Do(func() {
				entered <- struct{}{}
				<-release // a disk that takes its time
			})
			return f.Sync()
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sh.Close()) })
	require.NoError(t, sh.Put("a", []byte(`1`)))
	<-entered

	done := make(chan error, 1)
	go func() {
		if _, err := sh.Get("a"); err != nil {
			done <- err
			return
		}
		done <- sh.Put("b", []byte(`2`))
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a read and a write waited for the fsync")
	}
	close(release)
	v, err := sh.Get("b")
	require.NoError(t, err)
	require.Equal(t, `2`, string(v))
}
