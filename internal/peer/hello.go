package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The hello opens every link on the port (inside TLS, when on). The dialler
// sends a kind byte, naming what the link carries so that one address per
// replica serves both raft and RPC, and its ensemble's id. The acceptor,
// once it admitted the link, answers with the same kind and its own id, and
// closes the link if the ids disagree; the dialler checks the id too, and
// so says why. A refused link thus
// fails while dialling, before a request is written, so its caller knows
// the peer ran nothing; and a replica of another ensemble (a config listing
// the wrong host or port, a data dir copied from elsewhere) never reaches
// raft or the RPC on either side. An all-zero id is a replica that does not
// know its ensemble yet (new, or joining), and agrees with any.
//
// The kinds carry the link protocol's version. Earlier zoo used 'R' (raft)
// with 'Z' and '2' (RPC), without the answer, then 'r' and '3', without the
// ids; a replica sending them is refused with a log line, so replicas of
// different versions fail loudly instead of misreading each other (upgrade
// all replicas together).
const (
	KindRaft byte = 's'
	KindRPC  byte = '4'
)

// EnsembleIDLen is the length of the ensemble id in the hello.
const EnsembleIDLen = 16

// olderKinds are the kind bytes of earlier zoo versions.
var olderKinds = map[byte]bool{'R': true, 'Z': true, '2': true, 'r': true, '3': true}

// ErrOtherEnsemble means the peer belongs to another ensemble.
var ErrOtherEnsemble = errors.New("zoo: the peer belongs to another ensemble")

// hello is one side's half of the exchange.
type hello struct {
	kind     byte
	ensemble [EnsembleIDLen]byte
}

func (h hello) known() bool { return h.ensemble != [EnsembleIDLen]byte{} }

// agrees reports whether both sides may belong to one ensemble.
func (h hello) agrees(o hello) bool {
	return !h.known() || !o.known() || h.ensemble == o.ensemble
}

// ourHello is this replica's hello for kind.
func (t *Transport) ourHello(kind byte) hello {
	h := hello{kind: kind}
	if t.opts.Ensemble != nil {
		copy(h.ensemble[:], t.opts.Ensemble())
	}
	return h
}

func writeHello(c net.Conn, h hello) error {
	_, err := c.Write(append([]byte{h.kind}, h.ensemble[:]...))
	return err
}

// readKind reads the kind byte that starts a hello.
func readKind(c net.Conn) (byte, error) {
	var kind [1]byte
	_, err := io.ReadFull(c, kind[:])
	return kind[0], err
}

// readEnsemble reads the id that follows a current kind byte.
func readEnsemble(c net.Conn, kind byte) (hello, error) {
	h := hello{kind: kind}
	_, err := io.ReadFull(c, h.ensemble[:])
	return h, err
}

// otherEnsemble is the error of a hello whose id is not ours.
func otherEnsemble(ours, theirs hello) error {
	return fmt.Errorf("%w: it belongs to ensemble %x, this replica to %x: check the servers listed in the "+
		"configuration (host and port of each member) and that each replica runs on its own data dir",
		ErrOtherEnsemble, theirs.ensemble, ours.ensemble)
}

// greet is the dialler's side: it sends its hello and checks the answer.
func (t *Transport) greet(c net.Conn, kind byte) error {
	ours := t.ourHello(kind)
	if err := writeHello(c, ours); err != nil {
		return err
	}
	echo, err := readKind(c)
	if err != nil {
		return err
	}
	if echo != kind {
		return fmt.Errorf("peer answered kind %q to %q (a different zoo version?)", echo, kind)
	}
	theirs, err := readEnsemble(c, kind)
	if err != nil {
		return err
	}
	if !ours.agrees(theirs) {
		return otherEnsemble(ours, theirs)
	}
	return nil
}

// welcome is the acceptor's side, after admission: it reads the dialler's
// id (under the handshake deadline already set on c) and refuses another
// ensemble's replica; the answer is sent once the link is registered
// (answer).
func (t *Transport) welcome(c net.Conn, kind byte) error {
	theirs, err := readEnsemble(c, kind)
	if err != nil {
		return fmt.Errorf("%w: no ensemble id: %w", ErrNotAdmitted, err)
	}
	if ours := t.ourHello(kind); !ours.agrees(theirs) {
		return fmt.Errorf("%w: %w", ErrNotAdmitted, otherEnsemble(ours, theirs))
	}
	return nil
}

// answer tells the dialler its link was admitted, with this replica's id.
func (t *Transport) answer(c net.Conn, kind byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(t.opts.HandshakeTimeout)); err != nil {
		return err
	}
	if err := writeHello(c, t.ourHello(kind)); err != nil {
		return err
	}
	return c.SetWriteDeadline(time.Time{})
}

// isOtherEnsemble reports whether a refusal is about the ensemble: an
// operator's mistake worth an error, not a stranger's knock.
func isOtherEnsemble(err error) bool { return errors.Is(err, ErrOtherEnsemble) }
