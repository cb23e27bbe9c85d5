package jute

// ConnectRequest is a client's first frame. The trailing readOnly byte came
// after the record in 3.4 clients and is absent from older ones (and from
// go-zookeeper and node-zookeeper-client): HasReadOnly says whether it is
// there, and a server answers in kind (ZooKeeper's ProtocolManager).
type ConnectRequest struct {
	ProtocolVersion int32
	LastZxidSeen    int64
	TimeOut         int32 // ms
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool
	HasReadOnly     bool
}

// ReadConnectRequest decodes a ConnectRequest payload; the readOnly byte is
// present iff a byte remains.
func ReadConnectRequest(b []byte) (ConnectRequest, error) {
	r := NewReader(b)
	var c ConnectRequest
	c.ProtocolVersion = r.Int()
	c.LastZxidSeen = r.Long()
	c.TimeOut = r.Int()
	c.SessionID = r.Long()
	c.Passwd = r.Buffer()
	if r.Err == nil && r.Len() > 0 {
		c.ReadOnly, c.HasReadOnly = r.Bool(), true
	}
	return c, r.Err
}

// Frame encodes the request as a frame: 48 bytes with a 16-byte password,
// 49 with the readOnly byte.
func (c ConnectRequest) Frame() []byte {
	w := NewFrame(29 + len(c.Passwd))
	w.Int(c.ProtocolVersion)
	w.Long(c.LastZxidSeen)
	w.Int(c.TimeOut)
	w.Long(c.SessionID)
	w.Buffer(c.Passwd)
	if c.HasReadOnly {
		w.Bool(c.ReadOnly)
	}
	return w.Frame()
}

// ConnectResponse is a server's first frame. TimeOut 0 (ZooKeeper also sends
// session id 0 and a zero password then) says the session expired.
type ConnectResponse struct {
	ProtocolVersion int32
	TimeOut         int32 // negotiated, ms
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool
	HasReadOnly     bool
}

// ReadConnectResponse decodes a ConnectResponse payload, with or without
// the trailing readOnly byte.
func ReadConnectResponse(b []byte) (ConnectResponse, error) {
	r := NewReader(b)
	var c ConnectResponse
	c.ProtocolVersion = r.Int()
	c.TimeOut = r.Int()
	c.SessionID = r.Long()
	c.Passwd = r.Buffer()
	if r.Err == nil && r.Len() > 0 {
		c.ReadOnly, c.HasReadOnly = r.Bool(), true
	}
	return c, r.Err
}

// Frame encodes the response as a frame: 40 bytes with a 16-byte password,
// 41 with the readOnly byte.
func (c ConnectResponse) Frame() []byte {
	w := NewFrame(17 + len(c.Passwd))
	w.Int(c.ProtocolVersion)
	w.Int(c.TimeOut)
	w.Long(c.SessionID)
	w.Buffer(c.Passwd)
	if c.HasReadOnly {
		w.Bool(c.ReadOnly)
	}
	return w.Frame()
}
