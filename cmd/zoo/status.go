package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/zooraft/zoo/internal/zoocfg"
)

// statusCmd asks a server for "srvr" and prints its Mode line, as zkServer.sh status does.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoo status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "ZooKeeper-style config file of the server to ask")
	server := fs.String("server", "", "host:port of the server to ask (instead of -config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	addr := *server
	if addr == "" {
		if *cfgPath == "" {
			*cfgPath = "zoo.cfg"
		}
		cfg, err := zoocfg.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "zoo:", err)
			return 2
		}
		host := cfg.ClientPortAddress
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		addr = net.JoinHostPort(host, strconv.Itoa(cfg.ClientPort))
		fmt.Fprintf(stdout, "Using config: %s\n", *cfgPath)
	}
	lines, err := fourLetterWord(addr, "srvr")
	if err != nil {
		fmt.Fprintf(stderr, "Error contacting service. It is probably not running. (%v)\n", err)
		return 1
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "Mode:") {
			fmt.Fprintln(stdout, l)
			return 0
		}
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 1
}

// fourLetterWord sends a four-letter word and returns the answer's lines.
func fourLetterWord(addr, word string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	if _, err := c.Write([]byte(word)); err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}
