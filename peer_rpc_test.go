package zoo

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// peerMessages are well-formed bodies of every peer RPC message, by method;
// the fuzz seeds.
func peerMessages() map[byte][][]byte {
	return map[byte][][]byte{
		rpcApply:        {encodeCommand(sampleCommands()[0]), encodeResult(&applyResult{index: 7, term: 2, sessionID: 9})},
		rpcTouch:        {encodeTouches([]sessionTouch{{id: 1, idle: time.Second}, {id: -5}})},
		rpcSyncIndex:    {encodeSyncIndex(10, 12, 3)},
		rpcMembership:   {encodeMembership(memberAddVoter, "4", "10.0.0.4:2888")},
		rpcCommitNotice: {encodeCommitNotice(commitNotice{index: 5, term: 2, leaderID: "1", leaderAddr: "a:1"})},
		rpcMemberRecord: {encodeMemberRecord([]byte("0123456789abcdef"), true), encodeMemberRecord(nil, false)},
	}
}

// decodePeerMessage decodes b as a message of method, re-encodes what
// decoded and says whether it round-trips.
func decodePeerMessage(method byte, b []byte) (decoded, stable bool) {
	switch method {
	case rpcApply: // the forwarded command, and the leader's reply (an
		// unknown error code in a reply decodes as a system error, so
		// replies are only held to not panicking)
		c, cerr := decodeCommand(b)
		_, rerr := decodeResult(b)
		stable = cerr != nil || b[0] != commandVersion || bytes.Equal(encodeCommand(c), b)
		return cerr == nil || rerr == nil, stable
	case rpcTouch:
		t, err := decodeTouches(b)
		return err == nil, err != nil || bytes.Equal(encodeTouches(t), b)
	case rpcSyncIndex:
		target, commit, term, err := decodeSyncIndex(b)
		return err == nil, err != nil || bytes.Equal(encodeSyncIndex(target, commit, term), b)
	case rpcMembership:
		op, id, addr, err := decodeMembership(b)
		return err == nil, err != nil || bytes.Equal(encodeMembership(op, string(id), string(addr)), b)
	case rpcCommitNotice:
		n, err := decodeCommitNotice(b)
		return err == nil, err != nil || bytes.Equal(encodeCommitNotice(n), b)
	case rpcMemberRecord:
		inst, known, err := decodeMemberRecord(b)
		return err == nil, err != nil || reflect.DeepEqual(encodeMemberRecord(inst, known), b)
	}
	return false, true
}

func TestPeerMessagesRoundTrip(t *testing.T) {
	for method, msgs := range peerMessages() {
		for _, b := range msgs {
			if decoded, stable := decodePeerMessage(method, b); !decoded || !stable {
				t.Errorf("method %d: %x decoded %v, round-trips %v", method, b, decoded, stable)
			}
		}
	}
	// What FuzzPeerRPCDecoders found, each once decoded without an error
	// (testdata/fuzz/FuzzPeerRPCDecoders keeps the inputs).
	for name, bad := range map[string]func() error{
		"a cut membership change": func() error { _, _, _, err := decodeMembership([]byte{1}); return err },
		"touches with a trailing byte": func() error {
			_, err := decodeTouches([]byte{0, 0, 0, 0, '0'})
			return err
		},
		"a touch idle longer than a Duration holds": func() error {
			_, err := decodeTouches(append([]byte{0, 0, 0, 1}, bytes.Repeat([]byte{0x30}, 16)...))
			return err
		},
		"a string length beyond 2 GiB, read as empty": func() error {
			_, _, _, err := decodeMembership([]byte{0x30, 0xf0, 0x30, 0x30, 0x30, 0, 0, 0, 0})
			return err
		},
		"a member record flag other than 0 or 1": func() error {
			_, _, err := decodeMemberRecord([]byte{0x30, 0, 0, 0, 0})
			return err
		},
	} {
		if bad() == nil {
			t.Errorf("%s decoded", name)
		}
	}
}

// FuzzPeerRPCDecoders feeds arbitrary bodies to the decoder of every peer
// RPC message (the first byte picks the method): none may panic or allocate
// beyond what the body can hold, and what decodes re-encodes to itself.
// Run long with: go test -run XXX -fuzz FuzzPeerRPCDecoders -fuzztime 10m .
func FuzzPeerRPCDecoders(f *testing.F) {
	for method, msgs := range peerMessages() {
		for _, b := range msgs {
			f.Add(append([]byte{method}, b...))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		if _, stable := decodePeerMessage(in[0], in[1:]); !stable {
			t.Fatalf("method %d: %x decodes but does not re-encode to itself", in[0], in[1:])
		}
	})
}

// A forwarded command that does not decode is refused by the leader: once
// sealed into the log it would stop every replica that applies it.
func TestLeaderRefusesAnUndecodableForwardedCommand(t *testing.T) {
	e, err := Open(Config{TickTime: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	garbage := append([]byte{commandVersion}, bytes.Repeat([]byte{0xee}, 40)...)
	if _, err := e.startRPC(ctx, rpcApply, garbage)(); !errors.Is(err, ErrMarshallingError) {
		t.Fatalf("forwarded garbage: %v, want ErrMarshallingError", err)
	}
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatalf("after refusing it the replica must still serve: %v", err)
	}
	if _, err := s.Create(ctx, "/still", nil, ModePersistent, nil); err != nil || e.Failure() != nil {
		t.Fatalf("create after refusing a forwarded command: %v (failure %v)", err, e.Failure())
	}
}
