package jute

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxBuffer is ZooKeeper's default jute.maxbuffer (0xfffff): the largest
// frame a ZooKeeper server accepts.
const MaxBuffer = 1048575

// ErrFrameSize marks a length prefix below 0 or above the reader's limit:
// ZooKeeper closes the connection on it ("Len error").
var ErrFrameSize = errors.New("jute: frame length out of range")

// ReadFrame reads one length-prefixed frame of at most maxSize bytes from r.
// The frame is read in chunks of at most 64 KiB, so a lying length prefix
// costs no more memory than the bytes that actually arrive.
func ReadFrame(r io.Reader, maxSize int) ([]byte, error) {
	var p [4]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return nil, err
	}
	return ReadFrameBody(r, p[:], maxSize)
}

// ReadFrameBody reads the payload of a frame whose 4-byte length prefix was
// already read (a server peeks at it for four-letter words).
func ReadFrameBody(r io.Reader, prefix []byte, maxSize int) ([]byte, error) {
	n := int64(int32(binary.BigEndian.Uint32(prefix)))
	if n < 0 || n > int64(maxSize) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameSize, n, maxSize)
	}
	const chunk = 64 << 10
	frame := make([]byte, 0, min(n, chunk))
	for int64(len(frame)) < n {
		k := int(min(n-int64(len(frame)), chunk))
		start := len(frame)
		frame = slices.Grow(frame, k)[:start+k]
		if _, err := io.ReadFull(r, frame[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return frame, nil
}
