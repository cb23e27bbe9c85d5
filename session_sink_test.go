package zoo

import "testing"

type sinkRecorder struct{ got []Event }

func (r *sinkRecorder) Notify(ev Event) { r.got = append(r.got, ev) }

// A session Watcher hears of a snapshot reset of its persistent watches (it
// must re-arm them), but not of ordinary removals, which ZooKeeper never sends.
func TestSessionSinkPassesOnlyWatchResets(t *testing.T) {
	rec := &sinkRecorder{}
	k := &sessionSink{owner: &Session{id: 1}, w: rec}
	k.notify(Event{Type: EventNotWatching, Path: "/a", Err: ErrSessionExpired})
	k.notify(Event{Type: EventNotWatching, Path: "/a"})
	k.notify(Event{Type: EventNodeCreated, Path: "/a"})
	k.notify(Event{Type: EventNotWatching, Path: "/b", Err: ErrWatchReset})
	if len(rec.got) != 2 || rec.got[0].Type != EventNodeCreated || rec.got[1].Err != ErrWatchReset {
		t.Fatalf("Watcher got %+v", rec.got)
	}
}
