package zkwire

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo/internal/realzk"
)

// TestBuiltinNodesMatchZooKeeper reads the nodes every fresh ZooKeeper has, and
// makes a sequential child of the root, through go-zookeeper against a real
// ZooKeeper 3.8 and against zoo: data (null or empty), the Stat fields that do
// not depend on zxids or clocks, ACLs and the created name must agree.
func TestBuiltinNodesMatchZooKeeper(t *testing.T) {
	zkAddr := realzk.Standalone(t, 200*time.Millisecond)
	_, zooAddr := serve(t, openSingle(t), Config{})
	observe := func(addr string) []string {
		c, _ := connectZK(t, []string{addr}, 10*time.Second)
		var out []string
		for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
			data, st, err := c.Get(p)
			acl, _, aclErr := c.GetACL(p)
			kids, _, kidsErr := c.Children(p)
			out = append(out, fmt.Sprintf("%s: data nil=%v %q err=%v | version=%d cversion=%d aversion=%d owner=%d len=%d kids=%d | acl=%v %v | children=%v %v",
				p, data == nil, data, err, st.Version, st.Cversion, st.Aversion, st.EphemeralOwner, st.DataLength, st.NumChildren,
				acl, aclErr, kids, kidsErr))
		}
		name, err := c.Create("/", nil, zk.FlagSequence, zk.WorldACL(zk.PermAll))
		out = append(out, fmt.Sprintf("sequential child of /: %q %v", name, err))
		_, st, err := c.Get("/")
		out = append(out, fmt.Sprintf("/ afterwards: cversion=%d kids=%d %v", st.Cversion, st.NumChildren, err))
		return out
	}
	want, got := observe(zkAddr), observe(zooAddr)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("\nZooKeeper: %s\nzoo:       %s", want[i], got[i])
		}
	}
}
