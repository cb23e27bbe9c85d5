package zoocfg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads the zoo.cfg at path as [Parse] does, naming path in errors and
// warnings. Then, as ZooKeeper's QuorumPeerConfig:
//
//   - it reads the server.N lines from DynamicConfigFile if that is set (a
//     relative path is tried from the working directory, as ZooKeeper does,
//     then from path's directory);
//   - when servers are listed, it reads MyID from dataDir/myid (relative to
//     the working directory, as ZooKeeper does), which must name one of them.
//     A missing myid is allowed only when the config is not
//     [Config.Distributed]: one participant with standaloneEnabled, whose ID
//     becomes MyID;
//   - it resolves this server's client address: the client part of its
//     server.N line, if any, must agree with clientPort (and with
//     clientPortAddress unless that is a wildcard) and then fills ClientPort
//     and ClientPortAddress;
//   - PeerType becomes this server's role on its server.N line, with a
//     warning if peerType said otherwise.
//
// Errors are [*Error]s, except that a zoo.cfg that cannot be opened gives the
// [*fs.PathError] from [os.Open].
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, p, err := parse(f, path)
	if err != nil {
		return nil, err
	}
	if err := p.loadPasswords(c); err != nil {
		return nil, err
	}
	if c.DynamicConfigFile != "" {
		if err := p.loadDynamic(c, path); err != nil {
			return nil, err
		}
		if err := p.checkServers(c); err != nil {
			return nil, err
		}
	}
	if len(c.Servers) > 0 {
		if err := p.loadMyID(c); err != nil {
			return nil, err
		}
		if err := p.resolveSelf(c); err != nil {
			return nil, err
		}
	}
	c.Warnings = p.warnings
	return c, nil
}

// loadDynamic reads the server.N lines of c.DynamicConfigFile.
func (p *parser) loadDynamic(c *Config, cfgPath string) error {
	dpath := c.DynamicConfigFile
	data, err := os.ReadFile(dpath)
	if errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(dpath) {
		alt := filepath.Join(filepath.Dir(cfgPath), dpath)
		if altData, altErr := os.ReadFile(alt); altErr == nil {
			dpath, data, err = alt, altData, nil
		}
	}
	if err != nil {
		return &Error{File: p.file, Line: p.lines["dynamicConfigFile"], Key: "dynamicConfigFile",
			Msg: "cannot read: " + err.Error(), err: err}
	}
	props, err := readProperties(string(data))
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.File = dpath
		}
		return err
	}
	d := &parser{file: dpath, lines: map[string]int{}, serverLine: map[string]int{},
		warnedPrefix: map[string]bool{}, multiAddress: p.multiAddress}
	for _, prop := range props {
		if err := d.apply(c, prop, true); err != nil {
			return err
		}
	}
	p.warnings = append(p.warnings, d.warnings...)
	p.serverLine, p.serverFile = d.serverLine, dpath
	return nil
}

// loadMyID sets c.MyID from dataDir/myid.
func (p *parser) loadMyID(c *Config) error {
	path := filepath.Join(c.DataDir, "myid")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !c.Distributed() {
			// ZooKeeper runs a lone participant standalone, without myid
			// (checkServers refused observers next to it).
			c.MyID = c.Servers[0].ID
			return nil
		}
		return &Error{File: p.file, Line: p.lines["dataDir"], Key: "dataDir",
			Msg: fmt.Sprintf("myid file %s is missing: it must hold this server's N from server.N (echo 1 > %s)", path, path),
			err: err}
	}
	if err != nil {
		return &Error{File: path, Msg: "cannot read: " + err.Error(), err: err}
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(string(data), "\uFEFF"), "\n")
	first = trimJava(first) // also drops a \r
	if first == "" {
		return &Error{File: path, Line: 1, Msg: "empty: it must hold this server's N from server.N"}
	}
	id, err := parseID(first)
	if err != nil {
		return &Error{File: path, Line: 1, Msg: "server ID " + err.Error()}
	}
	if _, ok := p.serverLine[id]; !ok {
		ids := make([]string, len(c.Servers))
		for i, s := range c.Servers {
			ids[i] = s.ID
		}
		return &Error{File: path, Line: 1, Msg: fmt.Sprintf("id %s matches no server.N in %s (servers: %s)",
			id, p.serverFileName(), strings.Join(ids, ", "))}
	}
	c.MyID = id
	return nil
}

// resolveSelf settles this server's client address and role between the
// static keys and its server.N line, as QuorumPeerConfig.setupClientPort and
// setupPeerType do.
func (p *parser) resolveSelf(c *Config) error {
	self, ok := c.Self()
	if !ok {
		return nil
	}
	role := "participant"
	if self.Observer {
		role = "observer"
	}
	if p.peerTypeSet && c.PeerType != role {
		p.warnf(p.lines["peerType"], "peerType: %s, but server.%s is listed as %s; using %s",
			c.PeerType, self.ID, role, role)
	}
	c.PeerType = role
	if self.ClientPort == 0 {
		return nil
	}
	where := fmt.Sprintf("server.%s (%s:%d)", self.ID, p.serverFileName(), p.serverLine[self.ID])
	if c.ClientPort != 0 && c.ClientPort != self.ClientPort {
		return p.errorf(p.lines["clientPort"], "clientPort", "%d differs from client port %d on %s",
			c.ClientPort, self.ClientPort, where)
	}
	if a := c.ClientPortAddress; a != "" && !isWildcard(a) && a != self.ClientHost {
		return p.errorf(p.lines["clientPortAddress"], "clientPortAddress", "%q differs from client address %q on %s",
			a, self.ClientHost, where)
	}
	c.ClientPort = self.ClientPort
	if self.ClientHost != "" {
		c.ClientPortAddress = self.ClientHost
	}
	return nil
}

func isWildcard(host string) bool {
	switch host {
	case "0.0.0.0", "::", "0:0:0:0:0:0:0:0":
		return true
	}
	return false
}
