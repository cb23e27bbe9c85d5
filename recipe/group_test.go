package recipe

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// waitMembers waits until the feed's latest snapshot equals want (id to
// payload).
func waitMembers(t *testing.T, f *Feed[map[string][]byte], want map[string]string) {
	t.Helper()
	var last map[string][]byte
	testkit.EventuallyNil(t, 60*time.Second, func() error {
		select {
		case m, ok := <-f.C():
			if !ok {
				return fmt.Errorf("feed ended: %v", f.Err())
			}
			last = m
		default:
		}
		if len(last) == len(want) {
			same := true
			for id, p := range want {
				same = same && string(last[id]) == p
			}
			if same && last != nil {
				return nil
			}
		}
		return fmt.Errorf("members %q, want %q", last, want)
	})
}

func TestGroupMembership(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 180*time.Second)
	watchS := session(t, cl, 0)
	wg, err := NewGroup(watchS, "/services/api")
	must(t, err)
	f := wg.Watch(ctx)
	waitMembers(t, f, map[string]string{})

	regs := map[string]*Registration{}
	sessions := map[string]*zoo.Session{}
	for i, id := range []string{"a", "b", "c"} {
		s := session(t, cl, i)
		g, err := NewGroup(s, "/services/api")
		must(t, err)
		r, err := g.Register(ctx, id, []byte("host-"+id))
		must(t, err)
		regs[id], sessions[id] = r, s
	}
	waitMembers(t, f, map[string]string{"a": "host-a", "b": "host-b", "c": "host-c"})
	mustSync(t, watchS)
	if m, err := wg.Members(ctx); err != nil || len(m) != 3 || string(m["b"]) != "host-b" {
		t.Fatalf("Members = %q, %v", m, err)
	}

	// Payload update, deregistration.
	must(t, regs["a"].Update(ctx, []byte("host-a2")))
	must(t, regs["b"].Deregister(ctx))
	waitMembers(t, f, map[string]string{"a": "host-a2", "c": "host-c"})
	<-regs["b"].Done()
	if err := regs["b"].Err(); err != nil {
		t.Fatalf("Err after Deregister: %v", err)
	}
	must(t, regs["b"].Deregister(ctx)) // again: fine

	// A member's session closes: it is gone, and its registration says so.
	mustClose(t, sessions["c"])
	waitMembers(t, f, map[string]string{"a": "host-a2"})
	<-regs["c"].Done()
	if !errors.Is(regs["c"].Err(), zoo.ErrClosed) {
		t.Fatalf("registration after its session closed: %v", regs["c"].Err())
	}

	// Someone else deletes a member: the registration ends visibly.
	mustDelete(t, watchS, "/services/api/a")
	waitMembers(t, f, map[string]string{})
	<-regs["a"].Done()
	if !errors.Is(regs["a"].Err(), ErrRegistrationLost) {
		t.Fatalf("registration after its node was deleted: %v", regs["a"].Err())
	}
	if err := regs["a"].Update(ctx, []byte("x")); !errors.Is(err, ErrRegistrationLost) {
		t.Fatalf("Update of a lost registration: %v", err)
	}

	// Conflicts and bad ids.
	s1 := session(t, cl, 1)
	g1, err := NewGroup(s1, "/services/api")
	must(t, err)
	r1, err := g1.Register(ctx, "d", []byte("1"))
	must(t, err)
	r1b, err := g1.Register(ctx, "d", []byte("2")) // same session: payload replaced
	must(t, err)
	waitMembers(t, f, map[string]string{"d": "2"})
	g2, err := NewGroup(session(t, cl, 2), "/services/api")
	must(t, err)
	mustSync(t, g2.s)
	var me *MemberExistsError
	if _, err := g2.Register(ctx, "d", nil); !errors.As(err, &me) || !errors.Is(err, zoo.ErrNodeExists) || me.Owner != s1.ID() {
		t.Fatalf("Register of a taken id: %v", err)
	}
	for _, bad := range []string{"", "a/b", ".", ".."} {
		if _, err := g2.Register(ctx, bad, nil); !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("Register(%q): %v", bad, err)
		}
	}
	must(t, r1b.Deregister(ctx))
	<-r1.Done()

	// JSON payloads.
	type endpoint struct {
		Host string
		Port int
	}
	rj, err := g1.RegisterJSON(ctx, "e", endpoint{"10.0.0.5", 8080})
	must(t, err)
	defer rj.Deregister(ctx)
	m, err := MembersJSON[endpoint](ctx, g1)
	must(t, err)
	if !maps.Equal(m, map[string]endpoint{"e": {"10.0.0.5", 8080}}) {
		t.Fatalf("MembersJSON = %+v", m)
	}
}

// TestGroupMemberExpiry: members whose replica dies or is cut off vanish
// from the group once the ensemble expires their sessions.
func TestGroupMemberExpiry(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 180*time.Second)
	leader := cl.WaitLeader()
	watcherReplica := (leader + 1) % 3
	cut := (leader + 2) % 3 // a follower, so that the watcher keeps a quorum

	ws := session(t, cl, watcherReplica)
	g, err := NewGroup(ws, "/grp")
	must(t, err)
	f := g.Watch(ctx)
	waitMembers(t, f, map[string]string{})

	// short: a session with the shortest timeout (2 ticks), so that the
	// test need not wait long for its expiry.
	register := func(r int, id string, short bool) *Registration {
		var opts []zoo.SessionOption
		if short {
			opts = append(opts, zoo.WithSessionTimeout(time.Millisecond))
		}
		s := session(t, cl, r, opts...)
		gr, err := NewGroup(s, "/grp")
		must(t, err)
		reg, err := gr.Register(ctx, id, []byte(id))
		must(t, err)
		return reg
	}
	stay := register(watcherReplica, "stay", false)
	isolated := register(cut, "isolated", true)
	waitMembers(t, f, map[string]string{"stay": "stay", "isolated": "isolated"})

	// Cut off: the ensemble expires the session; once healed the member's
	// own replica learns it too.
	cl.Isolate(cut)
	waitMembers(t, f, map[string]string{"stay": "stay"})
	cl.Heal()
	select {
	case <-isolated.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the isolated member's registration did not end")
	}
	if !errors.Is(isolated.Err(), zoo.ErrSessionExpired) {
		t.Fatalf("isolated registration: %v", isolated.Err())
	}

	// Its replica dies: the session expires on the survivors.
	mustSync(t, ws)
	crashed := register(cut, "crashed", true)
	waitMembers(t, f, map[string]string{"stay": "stay", "crashed": "crashed"})
	cl.Stop(cut)
	waitMembers(t, f, map[string]string{"stay": "stay"})
	<-crashed.Done()
	if !errors.Is(crashed.Err(), zoo.ErrClosed) {
		t.Fatalf("registration on a stopped replica: %v", crashed.Err())
	}
	select {
	case <-stay.Done():
		t.Fatalf("a live member's registration ended: %v", stay.Err())
	default:
	}
	if m, err := g.Members(ctx); err != nil || !slices.Equal(slices.Sorted(maps.Keys(m)), []string{"stay"}) {
		t.Fatalf("Members = %q, %v", m, err)
	}
}
