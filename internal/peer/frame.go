package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Peer RPC framing. Every frame is
//
//	uint32 length | uint64 request id | 1 byte kind | body
//
// big-endian, where length counts the bytes after itself. A request's kind is
// the method; a response's kind is respOK (body = result) or respErr
// (body = int32 code | message). Responses may come back in any order.
const (
	headerSize   = 4 + 8 + 1
	maxFrameSize = 64 << 20 // bytes after the length field
	// MaxBodySize is the largest request or response body.
	MaxBodySize = maxFrameSize - 9

	respOK  byte = 0
	respErr byte = 1

	// writeTimeout bounds one frame write, so a peer that stops reading
	// breaks the connection instead of wedging every caller behind it.
	writeTimeout = 10 * time.Second

	// bodyChunk is how much of a body is allocated before its bytes arrive:
	// a length field that lies costs the liar bandwidth, not us memory.
	bodyChunk = 64 << 10
)

// ErrTooLarge is returned for a payload or response above the frame limit.
var ErrTooLarge = errors.New("zoo: rpc frame too large")

// readFrame reads one frame. The body is freshly allocated so callers may
// keep it. A length beyond the limit is an error: the stream cannot be
// trusted after it, so the caller closes the conn.
func readFrame(r io.Reader, hdr *[headerSize]byte) (id uint64, kind byte, body []byte, err error) {
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if n < 9 || n > maxFrameSize {
		return 0, 0, nil, fmt.Errorf("%w: length %d", ErrTooLarge, n)
	}
	id = binary.BigEndian.Uint64(hdr[4:12])
	kind = hdr[12]
	if body, err = readBody(r, int(n-9)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, err
	}
	return id, kind, body, nil
}

// readBody reads size bytes into a buffer that grows (doubling) as they
// arrive, so it never holds more than twice what the sender really sent.
func readBody(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, min(size, bodyChunk))
	for have := 0; ; {
		n, err := io.ReadFull(r, buf[have:])
		have += n
		if err != nil {
			return nil, err
		}
		if have == size {
			return buf, nil
		}
		grown := make([]byte, min(2*len(buf), size))
		copy(grown, buf)
		buf = grown
	}
}

// writeFrame writes one frame. The caller serializes. A frame of up to
// coalesceSize goes out in one Write (one TLS record, one syscall: neither
// a tls.Conn nor our wrapped conns take writev); bigger bodies are not copied.
func writeFrame(c net.Conn, id uint64, kind byte, body ...[]byte) error {
	size := 0
	for _, b := range body {
		size += len(b)
	}
	if size > MaxBodySize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(9+size))
	binary.BigEndian.PutUint64(hdr[4:12], id)
	hdr[12] = kind
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if size <= coalesceSize {
		frame := make([]byte, 0, headerSize+size)
		frame = append(frame, hdr[:]...)
		for _, b := range body {
			frame = append(frame, b...)
		}
		_, err := c.Write(frame)
		return err
	}
	bufs := make(net.Buffers, 0, 1+len(body))
	bufs = append(bufs, hdr[:])
	bufs = append(bufs, body...)
	_, err := bufs.WriteTo(c)
	return err
}

// coalesceSize is the largest body writeFrame copies to write in one go.
const coalesceSize = 256 << 10
