package zoocfg_test

import (
	"fmt"
	"strings"

	"github.com/zooraft/zoo/internal/zoocfg"
)

func ExampleParse() {
	c, err := zoocfg.Parse(strings.NewReader(`
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
4lw.commands.whitelist=srvr,ruok
snapCount=100000
server.1=zk1:2888:3888;2181
server.2=zk2:2888:3888;2181
server.3=[2001:db8::3]:2888:3888:observer;2181
server.4=zk4:2888:3888;2181
`), "zoo.cfg")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.TickTime, c.InitLimit, c.SyncLimit, c.FourLetterWords)
	for _, s := range c.Servers {
		fmt.Printf("%s %s quorum %d election %d client %d observer %v\n",
			s.ID, s.Host, s.QuorumPort, s.ElectionPort, s.ClientPort, s.Observer)
	}
	fmt.Println(c.Warnings)

	_, err = zoocfg.Parse(strings.NewReader("tickTime=2s\n"), "zoo.cfg")
	fmt.Println(err)
	// Output:
	// 2s 10 5 [srvr ruok]
	// 1 zk1 quorum 2888 election 3888 client 2181 observer false
	// 2 zk2 quorum 2888 election 3888 client 2181 observer false
	// 3 2001:db8::3 quorum 2888 election 3888 client 2181 observer true
	// 4 zk4 quorum 2888 election 3888 client 2181 observer false
	// []
	// zoo.cfg:1: tickTime: not a number: "2s"
}
