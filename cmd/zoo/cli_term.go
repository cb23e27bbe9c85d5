package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// termLineReader is the interactive shell's line editor: golang.org/x/term's
// Terminal on a raw-mode tty, which gives cursor movement, Ctrl-A/E/K/U/W,
// Up/Down through the session's history and Tab completion of command
// names, and redraws the prompt and the line being typed when a watch event
// is printed meanwhile. Ctrl-D on an empty line and Ctrl-C end the shell.
type termLineReader struct {
	t         *term.Terminal
	fd        int
	saved     *term.State
	stderr    io.Writer // stderr when it is not the terminal
	complete  func(line string, pos int) (string, int, bool)
	stopWinch func()
}

// newTermLineReader returns a line editor when stdin and stdout are both a
// terminal, and ok=false otherwise.
func newTermLineReader(stdin io.Reader, stdout, stderr io.Writer) (*termLineReader, bool) {
	in, ok1 := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return nil, false
	}
	saved, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, false
	}
	r := &termLineReader{fd: int(in.Fd()), saved: saved, stderr: stderr}
	r.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "")
	r.t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' || r.complete == nil {
			return "", 0, false
		}
		return r.complete(line, pos)
	}
	resize := func() {
		if w, h, err := term.GetSize(int(out.Fd())); err == nil && w > 0 && h > 0 {
			r.t.SetSize(w, h)
		}
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				resize()
			case <-done:
				return
			}
		}
	}()
	r.stopWinch = func() {
		signal.Stop(winch)
		close(done)
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.stderr = r.t // the same screen: go through the editor, which keeps the prompt intact
	}
	return r, true
}

func (r *termLineReader) readLine(prompt string) (string, error) {
	r.t.SetPrompt(prompt)
	return r.t.ReadLine()
}

// Write prints through the editor: newlines become CRLF in raw mode, and a
// prompt on screen is moved out of the way and redrawn.
func (r *termLineReader) Write(p []byte) (int, error) { return r.t.Write(p) }

func (r *termLineReader) errWriter() io.Writer { return r.stderr }

// restore puts the terminal back as it was.
func (r *termLineReader) restore() {
	r.stopWinch()
	term.Restore(r.fd, r.saved)
}
