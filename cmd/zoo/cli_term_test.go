//go:build linux

package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/term"
)

// openPty opens a pseudo-terminal pair: the test types into and reads the
// screen from master; zoo cli gets tty as its stdin, stdout and stderr.
func openPty(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	ioctl := func(req uintptr, arg unsafe.Pointer) {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), req, uintptr(arg)); errno != 0 {
			t.Fatalf("ioctl %#x: %v", req, errno)
		}
	}
	unlock := int32(0)
	ioctl(syscall.TIOCSPTLCK, unsafe.Pointer(&unlock))
	var n uint32
	ioctl(syscall.TIOCGPTN, unsafe.Pointer(&n))
	size := struct{ rows, cols, x, y uint16 }{24, 100, 0, 0}
	ioctl(syscall.TIOCSWINSZ, unsafe.Pointer(&size))
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// The interactive shell on a terminal: zkCli's prompt with the session state
// and command number, Up recalling history, Tab completing command names, an
// event printed while the prompt waits, Ctrl-D ending the shell, and the
// terminal restored.
func TestCliTerminal(t *testing.T) {
	s := startCliServer(t)
	s.reset(t)
	master, tty := openPty(t)
	before, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}

	var screen syncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	exit := make(chan int, 1)
	go func() { exit <- runCli([]string{"-server", s.addr}, tty, tty, tty) }()

	seen := 0 // screen offset up to which expectations were met
	expect := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			out := screen.String()
			if i := strings.Index(out[seen:], what); i >= 0 {
				seen += i + len(what)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("screen lacks %q after offset %d:\n%q", what, seen, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	typ := func(keys string) {
		t.Helper()
		if _, err := master.Write([]byte(keys)); err != nil {
			t.Fatal(err)
		}
	}
	prompt := func(n int) string { return "[zk: " + s.addr + "(CONNECTED) " + strconv.Itoa(n) + "] " }

	expect("\r\nWATCHER::\r\n\r\nWatchedEvent state:SyncConnected type:None path:null\r\n")
	typ("create /tty x\r")
	expect("Created /tty\r\n")
	expect(prompt(1))
	typ("get /tty\r")
	expect("x\r\n" + prompt(2))
	typ("\x1b[A") // Up: the last command again
	expect("get /tty")
	typ("\r")
	expect("x\r\n" + prompt(3))
	typ("getAc\t/tty\r") // Tab completes getAcl
	expect("getAcl /tty")
	expect("'world,'anyone\r\n: cdrwa\r\n" + prompt(4))
	typ("get -w /tty\r")
	expect("x\r\n" + prompt(5))
	typ("ls") // a half-typed line, redrawn after the event
	expect("ls")
	if _, err := s.admin.Set(context.Background(), "/tty", []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	expect("WatchedEvent state:SyncConnected type:NodeDataChanged path:/tty\r\n" + prompt(5) + "ls")
	typ(" /\r")
	expect("[tty, zookeeper]\r\n" + prompt(6))
	typ("\x04") // Ctrl-D
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("zoo cli did not end on Ctrl-D")
	}
	after, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Error("terminal state not restored")
	}
}
