package zkwire

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// ZooKeeper's dynamic reconfiguration (reconfig, opcode 16) mapped onto the
// ensemble's membership changes.
//
// What differs from ZooKeeper:
//   - zoo's replicas talk raft on one port: a joining server's member address
//     is host:quorumPort (what zoo server listens on, see cmd/zoo); the
//     election port and the client address are checked for form and ignored.
//   - The change is a sequence of raft configuration changes (additions and
//     promotions first, then removals, this replica last), not one atomic
//     switch; an error part way leaves the earlier changes in place.
//   - /zookeeper/config stays empty: zoo does not know its members' client
//     addresses, and Curator's EnsembleTracker would rewrite its connection
//     string to whatever server lines it found there (quorum ports included).
//     The new configuration is in the reply only, as server.<id>=<addr>:<role>
//     lines (the shape of the conf four-letter word) and version=<hex>, a hash
//     of the membership that curConfigId is checked against.
//   - A participant cannot become an observer (raft would have to demote it
//     in place, which zoo does not offer).
//   - ZNEWCONFIGNOQUORUM when most voters of the new configuration would be
//     servers that are not members yet (ZooKeeper checks that a quorum of the
//     new configuration is connected and synced; zoo knows only who is a
//     member): add a new server as an observer first, then promote it.

// reconfigTimeout bounds one reconfig request.
const reconfigTimeout = 30 * time.Second

// memberSpec is one member of a requested configuration.
type memberSpec struct {
	id       string
	addr     string // host:quorumPort
	observer bool
}

// memberStep is one membership change of a reconfig, in order.
type memberStep struct {
	remove bool
	spec   memberSpec // for a removal, only the id
}

// handleReconfig serves reconfig(16): ReconfigRequest{joiningServers,
// leavingServers, newMembers, curConfigId}. Errors, in ZooKeeper's order:
// ZRECONFIGDISABLED (Config.ReconfigEnabled is false), ZRECONFIGINPROGRESS
// (another reconfig runs on this server), ZBADVERSION (curConfigId is neither
// -1 nor the current version), ZBADARGUMENTS (malformed servers, both forms
// at once, an unknown leaving server, no participant left),
// ZNEWCONFIGNOQUORUM, then ZNOAUTH unless the session may WRITE
// /zookeeper/config (the super user may; its ACL is read-only for everyone
// else, as in ZooKeeper). The reply is GetDataResponse{new config, Stat of
// /zookeeper/config}.
func handleReconfig(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	if !c.srv.cfg.ReconfigEnabled {
		return nil, zoo.ErrReconfigDisabled
	}
	joining, leaving, members, curConfigID := r.UString(), r.UString(), r.UString(), r.Long()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if !c.srv.reconfigMu.TryLock() {
		return nil, zoo.ErrReconfigInProgress
	}
	defer c.srv.reconfigMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, reconfigTimeout)
	defer cancel()
	ens := c.srv.ens
	st, err := ens.Status()
	if err != nil {
		return nil, err
	}
	if !st.Serving {
		return nil, zoo.ErrNotServing
	}
	if curConfigID != -1 && curConfigID != membersVersion(st.Members) {
		return nil, fmt.Errorf("%w: config version is %x, not %x", zoo.ErrBadVersion, membersVersion(st.Members), curConfigID)
	}
	steps, err := planReconfig(st.Members, st.ID, st.LeaderID, joining, leaving, members)
	if err != nil {
		return nil, err
	}
	if err := s.CheckAccess(ctx, configNode, zoo.PermWrite); err != nil {
		return nil, err
	}
	for _, step := range steps {
		var err error
		switch {
		case step.remove:
			err = ens.RemoveMember(ctx, step.spec.id)
		case step.spec.observer:
			err = ens.AddObserver(ctx, step.spec.id, step.spec.addr)
		default:
			err = ens.AddVoter(ctx, step.spec.id, step.spec.addr)
		}
		if err != nil {
			c.srv.log.Info("zkwire: reconfig", "remote", c.remote, "step", step, "err", err)
			return nil, err
		}
	}
	// Let this replica see the committed configuration before answering. It
	// may have removed itself, so a failed sync is no reason to fail.
	sctx, scancel := context.WithTimeout(ctx, catchUpTimeout)
	_ = s.Sync(sctx, "/")
	scancel()
	if st, err = ens.Status(); err != nil {
		return nil, err
	}
	text := membershipText(st) + fmt.Sprintf("version=%x\n", membersVersion(st.Members))
	_, stat, _ := s.Exists(ctx, configNode)
	c.srv.log.Info("zkwire: reconfig done", "remote", c.remote, "session", s.ID(), "steps", len(steps))
	return func(w *jute.Writer) { w.Buffer([]byte(text)); w.Stat(stat) }, nil
}

// configNode is ZooKeeper's ZooDefs.CONFIG_NODE.
const configNode = "/zookeeper/config"

// membersVersion identifies a membership: a hash of its sorted
// server.<id>=<addr>:<role> lines, kept positive so that it never reads as
// curConfigId's -1 ("any").
func membersVersion(ms []zoo.Member) int64 {
	lines := make([]string, 0, len(ms))
	for _, m := range ms {
		lines = append(lines, memberLine(m))
	}
	slices.Sort(lines)
	h := fnv.New64a()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return int64(h.Sum64() &^ (1 << 63))
}

// memberLine is a member as a line of membershipText, without the newline.
func memberLine(m zoo.Member) string {
	role := "participant"
	if !m.Voter {
		role = "observer"
	}
	return "server." + m.ID + "=" + m.Addr + ":" + role
}

// planReconfig turns a ReconfigRequest into membership steps against the
// current members. self is this replica, leader the current leader: removing
// them goes last (the leader, then this replica), so the other steps still
// find both.
func planReconfig(current []zoo.Member, self, leader, joining, leaving, newMembers string) ([]memberStep, error) {
	joining, leaving, newMembers = strings.TrimSpace(joining), strings.TrimSpace(leaving), strings.TrimSpace(newMembers)
	if newMembers != "" && (joining != "" || leaving != "") {
		return nil, fmt.Errorf("%w: newMembers excludes joiningServers and leavingServers", zoo.ErrBadArguments)
	}
	byID := map[string]zoo.Member{}
	for _, m := range current {
		byID[m.ID] = m
	}
	var join []memberSpec
	leave := map[string]bool{}
	if newMembers != "" {
		specs, err := parseServerList(newMembers)
		if err != nil {
			return nil, err
		}
		join = specs
		listed := map[string]bool{}
		for _, sp := range specs {
			listed[sp.id] = true
		}
		for _, m := range current {
			if !listed[m.ID] {
				leave[m.ID] = true
			}
		}
	} else {
		specs, err := parseServerList(joining)
		if err != nil {
			return nil, err
		}
		join = specs
		for _, id := range splitList(leaving) {
			id = canonicalID(id)
			if _, ok := byID[id]; !ok {
				return nil, fmt.Errorf("%w: leaving server %s is not a member", zoo.ErrBadArguments, id)
			}
			leave[id] = true
		}
	}

	var steps []memberStep
	after := map[string]bool{} // voters of the new configuration
	newVoters, knownVoters := 0, 0
	for _, m := range current {
		if m.Voter && !leave[m.ID] {
			after[m.ID] = true
		}
	}
	for _, sp := range join {
		if leave[sp.id] {
			return nil, fmt.Errorf("%w: server %s is both joining and leaving", zoo.ErrBadArguments, sp.id)
		}
		m, member := byID[sp.id]
		switch {
		case member && m.Voter && sp.observer:
			return nil, fmt.Errorf("%w: server %s is a participant; zoo cannot turn it into an observer", zoo.ErrBadArguments, sp.id)
		case member && m.Addr == sp.addr && m.Voter == !sp.observer:
			// Already so: nothing to change.
		default:
			steps = append(steps, memberStep{spec: sp})
		}
		if sp.observer {
			delete(after, sp.id)
		} else {
			after[sp.id] = true
		}
	}
	for id := range after {
		newVoters++
		if _, ok := byID[id]; ok {
			knownVoters++
		}
	}
	if newVoters == 0 {
		return nil, fmt.Errorf("%w: the new configuration has no participant", zoo.ErrBadArguments)
	}
	if 2*knownVoters <= newVoters {
		return nil, fmt.Errorf("%w: most participants of the new configuration are not members yet; add new servers as observers first",
			zoo.ErrNewConfigNoQuorum)
	}
	ids := make([]string, 0, len(leave))
	for id := range leave {
		ids = append(ids, id)
	}
	// Others in id order, then the leader, then this replica.
	rank := func(id string) int {
		switch id {
		case self:
			return 2
		case leader:
			return 1
		}
		return 0
	}
	slices.SortFunc(ids, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	for _, id := range ids {
		steps = append(steps, memberStep{remove: true, spec: memberSpec{id: id}})
	}
	return steps, nil
}

// splitList splits a comma-separated list, trimming entries and dropping empty ones.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseServerList parses comma-separated server.N=... specs; a version=...
// entry (as in a dynamic config file) is ignored.
func parseServerList(list string) ([]memberSpec, error) {
	var out []memberSpec
	seen := map[string]bool{}
	for _, f := range splitList(list) {
		if strings.HasPrefix(f, "version=") {
			continue
		}
		sp, err := parseServerSpec(f)
		if err != nil {
			return nil, err
		}
		if seen[sp.id] {
			return nil, fmt.Errorf("%w: server %s is listed twice", zoo.ErrBadArguments, sp.id)
		}
		seen[sp.id] = true
		out = append(out, sp)
	}
	return out, nil
}

// serverForm is what parseServerSpec accepts.
const serverForm = "server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]"

// parseServerSpec parses one server.N=... spec of a reconfig.
func parseServerSpec(spec string) (memberSpec, error) {
	bad := func(why string) (memberSpec, error) {
		return memberSpec{}, fmt.Errorf("%w: %q: %s (want %s)", zoo.ErrBadArguments, spec, why, serverForm)
	}
	key, value, ok := strings.Cut(spec, "=")
	id, isServer := strings.CutPrefix(strings.TrimSpace(key), "server.")
	if !ok || !isServer || strings.TrimSpace(id) == "" {
		return bad("not server.N=...")
	}
	sp := memberSpec{id: canonicalID(strings.TrimSpace(id))}
	quorum, client, hasClient := strings.Cut(value, ";")
	fields, err := splitHostPorts(strings.TrimSpace(quorum))
	if err != nil || len(fields) < 3 || len(fields) > 4 {
		return bad("want host:quorumPort:electionPort[:role]")
	}
	qport, qerr := parsePort(fields[1])
	_, eerr := parsePort(fields[2])
	if fields[0] == "" || qerr != nil || eerr != nil {
		return bad("bad host or port")
	}
	if len(fields) == 4 {
		switch strings.ToLower(strings.TrimSpace(fields[3])) {
		case "participant":
		case "observer":
			sp.observer = true
		default:
			return bad("unknown role " + strconv.Quote(fields[3]))
		}
	}
	if hasClient {
		cf, err := splitHostPorts(strings.TrimSpace(client))
		if err != nil || len(cf) < 1 || len(cf) > 2 {
			return bad("the client part is [host:]port")
		}
		if _, err := parsePort(cf[len(cf)-1]); err != nil {
			return bad("bad client port")
		}
	}
	sp.addr = net.JoinHostPort(fields[0], strconv.Itoa(qport))
	return sp, nil
}

// splitHostPorts splits host:port:... where an IPv6 host is in brackets.
func splitHostPorts(s string) ([]string, error) {
	if !strings.HasPrefix(s, "[") {
		return strings.Split(s, ":"), nil
	}
	host, rest, ok := strings.Cut(s[1:], "]")
	if !ok {
		return nil, fmt.Errorf("no ']'")
	}
	if rest == "" {
		return []string{host}, nil
	}
	rest, ok = strings.CutPrefix(rest, ":")
	if !ok {
		return nil, fmt.Errorf("want ':' after ']'")
	}
	return append([]string{host}, strings.Split(rest, ":")...), nil
}

// parsePort parses a TCP port, 1-65535.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// canonicalID writes a decimal id as zoo.cfg's server.N does (server.01 is
// member "1"); other ids are kept as they are.
func canonicalID(id string) string {
	if n, err := strconv.ParseUint(id, 10, 63); err == nil {
		return strconv.FormatUint(n, 10)
	}
	return id
}
