package netns

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the processes run inside hosts: a listener
// (netnsListen=addr) and a dialler (netnsDial=addr, exit 0 if it connects).
func TestMain(m *testing.M) {
	if addr := os.Getenv("netnsListen"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(2)
			}
			c.Close()
		}
	}
	if addr := os.Getenv("netnsDial"); addr != "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCutsAreOneWayAndHeal(t *testing.T) {
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs as root with iproute2: %v", err)
		}
		t.Skip(err)
	}
	n, err := New(3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), n.prefix+"-") {
			t.Errorf("namespaces left after Close:\n%s", out)
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	listen := func(i int) string {
		addr := net.JoinHostPort(n.Addr(i), "7000")
		cmd := n.Command(i, exe)
		cmd.Env = append(os.Environ(), "netnsListen="+addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		buf := make([]byte, 10)
		if _, err := out.Read(buf); err != nil {
			t.Fatal(err)
		}
		return addr
	}
	reaches := func(from int, addr string) bool {
		cmd := n.Command(from, exe)
		cmd.Env = append(os.Environ(), "netnsDial="+addr)
		return cmd.Run() == nil
	}
	a0, a1 := listen(0), listen(1)
	// Every host has its own port space: both listen on 7000.
	if c, err := net.DialTimeout("tcp", a0, time.Second); err != nil {
		t.Fatalf("the test process cannot reach host 0: %v", err)
	} else {
		c.Close()
	}
	if !reaches(1, a0) || !reaches(2, a0) || !reaches(0, a1) {
		t.Fatal("hosts cannot reach each other")
	}

	if err := n.Cut(1, 0); err != nil {
		t.Fatal(err)
	}
	if reaches(1, a0) {
		t.Fatal("host 1 reaches host 0 through a cut")
	}
	if !reaches(2, a0) {
		t.Fatal("the cut from host 1 stopped host 2")
	}
	if c, err := net.DialTimeout("tcp", a0, time.Second); err != nil {
		t.Fatalf("the cut from host 1 stopped the test process: %v", err)
	} else {
		c.Close()
	}

	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	if !reaches(1, a0) {
		t.Fatal("still cut after Heal")
	}
	if err := n.Isolate(0); err != nil {
		t.Fatal(err)
	}
	if reaches(1, a0) || reaches(2, a0) || reaches(0, a1) {
		t.Fatal("an isolated host is reached, or reaches")
	}
	if c, err := net.DialTimeout("tcp", a0, time.Second); err != nil {
		t.Fatalf("the test process lost an isolated host: %v", err)
	} else {
		c.Close()
	}
}
