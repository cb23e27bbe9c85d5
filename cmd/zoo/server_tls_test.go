package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/zooraft/zoo/internal/zoocfg"
)

// sslQuorumReloadCertFiles reaches the replica's PeerTLS: false reads the
// certificate files once, anything else follows renewals.
func TestSSLQuorumReloadCertFilesReachesPeerTLS(t *testing.T) {
	for value, noReload := range map[string]bool{"true": false, "false": true} {
		c, err := zoocfg.Parse(strings.NewReader("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/z\nclientPort=2181\n"+
			"server.1=localhost:2888:3888\nserver.2=localhost:2889:3889\n"+
			"sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\nssl.quorum.trustStore.location=/ca.pem\n"+
			"sslQuorumReloadCertFiles="+value+"\n"), "")
		if err != nil {
			t.Fatal(err)
		}
		c.MyID = "1"
		z, err := ensembleConfig(c, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if z.PeerTLS == nil || z.PeerTLS.NoReload != noReload {
			t.Errorf("sslQuorumReloadCertFiles=%s: PeerTLS %+v, want NoReload %v", value, z.PeerTLS, noReload)
		}
	}
}
