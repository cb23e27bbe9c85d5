package peer

import (
	"time"
)

// Admission is not a one-time pass. Raft keeps its connections open for as
// long as replicas run, so every RecheckInterval each admitted or dialled
// link is checked again as if it were new, and closed if it no longer
// passes: a member removed from the ensemble, a certificate the renewed
// trust store no longer vouches for, or one that expired. Raft and the
// peer RPC then dial again, through admission.

func (t *Transport) recheckLoop() {
	defer t.wg.Done()
	tk := time.NewTicker(t.opts.RecheckInterval)
	defer tk.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tk.C:
		}
		for _, l := range t.table.allLinks() {
			if err := t.recheck(l); err != nil && t.ctx.Err() == nil {
				t.logger.Warn("closing a replica link that no longer passes admission", "error", err)
				l.conn.Close()
			}
		}
	}
}

// recheck applies the admission rules to a live link.
func (t *Transport) recheck(l *link) error {
	switch {
	case t.opts.TLS == nil && l.inbound:
		return t.members.admitsAddr(t.ctx, l.ip)
	case t.opts.TLS == nil:
		return nil // we chose whom to dial
	case l.inbound:
		return t.checkPeer(l.chain)
	default:
		return t.opts.TLS.verifyChain(l.chain, l.host)
	}
}
