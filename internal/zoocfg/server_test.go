package zoocfg

import "testing"

func TestParseServer(t *testing.T) {
	tests := []struct {
		value string
		want  Server
	}{
		{"zoo1:2888:3888", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888}},
		{"zoo1:2888:3888:participant", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888}},
		{"zoo1:2888:3888:observer", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, Observer: true}},
		{"zoo1:2888:3888: Observer ", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, Observer: true}},
		{"zoo1:2888:3888;2181", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181}},
		{"zoo1:2888:3888;0.0.0.0:2181", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, ClientHost: "0.0.0.0", ClientPort: 2181}},
		{"zoo1:2888:3888:observer;zoo1:2181", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, Observer: true, ClientHost: "zoo1", ClientPort: 2181}},
		{"zoo1:2888:3888 ; 2181", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181}},
		// Java's split drops trailing empty strings, so ZooKeeper takes these.
		{"zoo1:2888:3888;", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888}},
		{"zoo1:2888:3888:", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888}},
		{"zoo1:2888:3888;:2181", Server{Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181}},
		{"[::1]:2888:3888", Server{Host: "::1", QuorumPort: 2888, ElectionPort: 3888}},
		{"[2001:db8::7]:2888:3888:observer;[2001:db8::7]:2181",
			Server{Host: "2001:db8::7", QuorumPort: 2888, ElectionPort: 3888, Observer: true, ClientHost: "2001:db8::7", ClientPort: 2181}},
		{"[fe80::1%eth0]:2888:3888;[::]:2181", Server{Host: "fe80::1%eth0", QuorumPort: 2888, ElectionPort: 3888, ClientHost: "::", ClientPort: 2181}},
		{"10.0.0.1:1:65535", Server{Host: "10.0.0.1", QuorumPort: 1, ElectionPort: 65535}},
	}
	for _, tt := range tests {
		got, err := parseServer("7", tt.value, false)
		tt.want.ID = "7"
		if err != nil || got != tt.want {
			t.Errorf("parseServer(%q) = %+v, %v; want %+v", tt.value, got, err, tt.want)
		}
	}
}

func TestParseServerErrors(t *testing.T) {
	for _, value := range []string{
		"", "zoo1", "zoo1:2888", "zoo1:2888:3888:observer:x", "zoo1:2888:3888;2181;2182",
		"zoo1:2888:3888:leader", "zoo1:2888:2888", "zoo1:0:3888", "zoo1:2888:65536", "zoo1:+:3888",
		"zoo1:2888:3888;", "[::1]", "[::1]:2888", "[::1:2888:3888", "[::1]x:2888:3888", "[]:2888:3888",
		"::1:2888:3888", "2001:db8::1:2888:3888:observer", "zoo 1:2888:3888", "zoo1:2888:3888;a:b:2181",
		"zoo1:2888:3888;[::1]", "zoo1:2888:3888;h:", "a:1:2|b:1:2",
	} {
		if value == "zoo1:2888:3888;" {
			continue // accepted, see TestParseServer
		}
		if s, err := parseServer("1", value, false); err == nil {
			t.Errorf("parseServer(%q) = %+v, want an error", value, s)
		}
	}
}
