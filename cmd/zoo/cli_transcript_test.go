package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// updateTranscripts is -update: `go test ./cmd/zoo -run TestCliCommands -update`.
var updateTranscripts = flag.Bool("update", false, "rewrite the output in testdata/cli/*.txt from what zoo cli prints")

// A transcript is one zoo cli session, a case of TestCliCommandsPrintTranscripts
// and TestCliCommandsMatchZkCli: a script fed on stdin as a pipe, what the
// shell prints and its exit code. Unless the file says otherwise, zkCli.sh
// 3.8 prints the same. Each lives in testdata/cli/NAME.txt, which reads as
// the session does: a header, an empty line, then every line of the script
// after "> ", each followed by what zoo cli printed while running it
// (stdout and stderr).
//
//	# What the case shows (comment lines).
//	chroot: /app           optional: the suffix of -server's host:port
//	setup: /app /other     optional: nodes the admin creates first
//	exit: 1                the exit code (0 if absent)
//	zkcli skip: why        optional: not run through zkCli.sh, and why
//	zkcli differs: why     optional: zkCli.sh prints the block at the end instead
//
//	> create /a            a line of the script as typed (">" alone: an empty line)
//	Created /a             output, byte for byte, up to the next "> " line
//	> ls /a
//	[]
//	--- zkCli.sh, exit 1   with "zkcli differs": zkCli.sh's transcript, to the end
//
// After the first "> " every line is input or output: empty lines and
// trailing blanks are output too. Output is normalized by normalizeCliCase
// (times T, zxids Z1, Z2... in order of appearance, session ids SESSION,
// without the session's first SyncConnected event). The tests compare the
// whole transcript, not which command a line follows: an event may come at
// the end of one command or at the start of the next (connect's
// SyncConnected, say, which the next command waits for).
//
// With -update, TestCliCommandsPrintTranscripts rewrites the output and exit
// code of every file whose transcript zoo cli no longer prints, keeping its
// header and zkCli.sh block; a new case needs only a header and "> " lines.
// A file whose transcript still holds is left as it is, so that such an
// event does not move back and forth.
type transcript struct {
	name     string   // the file's name without .txt, and the subtests'
	comments []string // header comments, without their "#"
	chroot   string
	setup    []string
	steps    []cliStep
	exit     int
	zkSkip   string        // why the case is not compared with zkCli.sh
	zk       *zkTranscript // what zkCli.sh prints instead, when it differs
}

// cliStep is a line of the script and the lines zoo cli printed while it ran.
type cliStep struct {
	input  string
	output []string
}

// zkTranscript is what zkCli.sh prints for a script instead of zoo cli's
// transcript, and why.
type zkTranscript struct {
	why  string
	out  string
	exit int
}

const zkBlock = "--- zkCli.sh, exit "

func (tr *transcript) path() string { return filepath.Join("testdata", "cli", tr.name+".txt") }

// inputs is the script, a line each.
func (tr *transcript) inputs() []string {
	lines := make([]string, len(tr.steps))
	for i, s := range tr.steps {
		lines[i] = s.input
	}
	return lines
}

// script is the script as fed to stdin.
func (tr *transcript) script() string { return strings.Join(tr.inputs(), "\n") + "\n" }

// want is zoo cli's whole transcript.
func (tr *transcript) want() string {
	var b strings.Builder
	for _, s := range tr.steps {
		for _, l := range s.output {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// zkWant is zkCli.sh's transcript and exit code.
func (tr *transcript) zkWant() (string, int) {
	if tr.zk != nil {
		return tr.zk.out, tr.zk.exit
	}
	return tr.want(), tr.exit
}

// isInput reports whether a line of a transcript's body is input.
func isInput(line string) bool { return line == ">" || strings.HasPrefix(line, "> ") }

// parseTranscript reads a transcript file.
func parseTranscript(name, text string) (*transcript, error) {
	tr := &transcript{name: name}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	i := 0
	for ; i < len(lines) && !isInput(lines[i]); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		if c, ok := strings.CutPrefix(l, "#"); ok {
			tr.comments = append(tr.comments, c)
			continue
		}
		key, val, _ := strings.Cut(l, ": ")
		switch key {
		case "chroot":
			tr.chroot = val
		case "setup":
			tr.setup = strings.Fields(val)
		case "exit":
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: exit: %v", i+1, err)
			}
			tr.exit = n
		case "zkcli skip":
			tr.zkSkip = val
		case "zkcli differs":
			tr.zk = &zkTranscript{why: val}
		default:
			return nil, fmt.Errorf("line %d: %q is no comment, header (chroot, setup, exit, zkcli skip, zkcli differs) or input (\"> \")", i+1, l)
		}
	}
	if i == len(lines) {
		return nil, fmt.Errorf("no script: no line starts with \"> \"")
	}
	for ; i < len(lines); i++ {
		l := lines[i]
		if n, ok := strings.CutPrefix(l, zkBlock); ok {
			if tr.zk == nil {
				return nil, fmt.Errorf("line %d: a zkCli.sh block without \"zkcli differs: why\"", i+1)
			}
			exit, err := strconv.Atoi(n)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			tr.zk.exit = exit
			if rest := lines[i+1:]; len(rest) > 0 {
				tr.zk.out = strings.Join(rest, "\n") + "\n"
			}
			return tr, tr.check()
		}
		if isInput(l) {
			in, _ := strings.CutPrefix(l, ">")
			tr.steps = append(tr.steps, cliStep{input: strings.TrimPrefix(in, " ")})
			continue
		}
		s := &tr.steps[len(tr.steps)-1]
		s.output = append(s.output, l)
	}
	if tr.zk != nil {
		return nil, fmt.Errorf("\"zkcli differs\" without a %q block", zkBlock+"N")
	}
	return tr, tr.check()
}

// check finds what a transcript file cannot say.
func (tr *transcript) check() error {
	if tr.zk != nil && tr.zkSkip != "" {
		return fmt.Errorf("both \"zkcli skip\" and \"zkcli differs\"")
	}
	for _, s := range tr.steps {
		for _, l := range s.output {
			if isInput(l) || strings.HasPrefix(l, zkBlock) {
				return fmt.Errorf("output line %q would read as input or as the zkCli.sh block", l)
			}
		}
	}
	return nil
}

// render writes a transcript file.
func (tr *transcript) render() (string, error) {
	if err := tr.check(); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range tr.comments {
		b.WriteString("#" + c + "\n")
	}
	if tr.chroot != "" {
		b.WriteString("chroot: " + tr.chroot + "\n")
	}
	if len(tr.setup) > 0 {
		b.WriteString("setup: " + strings.Join(tr.setup, " ") + "\n")
	}
	fmt.Fprintf(&b, "exit: %d\n", tr.exit)
	if tr.zkSkip != "" {
		b.WriteString("zkcli skip: " + tr.zkSkip + "\n")
	}
	if tr.zk != nil {
		b.WriteString("zkcli differs: " + tr.zk.why + "\n")
	}
	b.WriteString("\n" + tr.body())
	if tr.zk != nil {
		fmt.Fprintf(&b, "%s%d\n%s", zkBlock, tr.zk.exit, tr.zk.out)
	}
	return b.String(), nil
}

// body is the script and zoo cli's output, as the file shows them.
func (tr *transcript) body() string {
	var b strings.Builder
	for _, s := range tr.steps {
		if s.input == "" {
			b.WriteString(">\n")
		} else {
			b.WriteString("> " + s.input + "\n")
		}
		for _, l := range s.output {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// loadTranscripts reads testdata/cli/*.txt, in the order of their names.
func loadTranscripts(t *testing.T) []*transcript {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "cli", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/cli/*.txt")
	}
	var trs []*transcript
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := parseTranscript(strings.TrimSuffix(filepath.Base(f), ".txt"), string(text))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		trs = append(trs, tr)
	}
	return trs
}

// cliRun is what zoo cli printed for a script.
type cliRun struct {
	raw     string   // stdout and stderr interleaved
	out     string   // raw normalized by normalizeCliCase
	perLine []string // out cut where each line of the script was read; nil if it cannot be
	exit    int
}

// runCliScript runs `zoo cli -server addr` in process, with lines on stdin
// handed over one at a time, so that what it prints can be cut where it
// read each.
func runCliScript(addr string, lines []string) cliRun {
	var out syncBuffer
	in := &lineFeed{lines: lines, out: &out}
	exit := runCli([]string{"-server", addr}, in, &out, &out)
	raw := out.String()
	r := cliRun{raw: raw, out: normalizeCliCase(raw), exit: exit}
	r.perLine = cutAtMarks(raw, in.marks, len(lines), r.out)
	return r
}

// lineFeed is stdin that gives out one line per Read, noting how much had
// been printed when the shell asked for each: it asks for the next line
// when the command before has finished.
type lineFeed struct {
	lines []string
	out   *syncBuffer
	next  int    // the next line to hand over
	rest  string // what is left of the line being handed over
	marks []int  // len(out) when each line was asked for
}

func (f *lineFeed) Read(p []byte) (int, error) {
	if f.rest == "" {
		if f.next == len(f.lines) {
			return 0, io.EOF
		}
		f.marks = append(f.marks, f.out.Len())
		f.rest = f.lines[f.next] + "\n"
		f.next++
	}
	n := copy(p, f.rest)
	f.rest = f.rest[n:]
	return n, nil
}

// cutAtMarks cuts a raw transcript at marks (offsets where the shell read a
// line) after normalizing it as normalizeCliCase does, so that a line's
// part is what its command printed. What came before the first line (the
// connection) goes with the first; a line never read (after quit) printed
// nothing. It returns nil if the parts do not add up to out, the whole
// transcript normalized.
func cutAtMarks(raw string, marks []int, lines int, out string) []string {
	if lines == 0 || len(marks) > lines {
		return nil
	}
	// A cut is a line of its own, which normalizeCliCase keeps as it is.
	const cut = "\x00\n"
	var b strings.Builder
	prev := 0
	for _, m := range marks {
		if m > 0 && raw[m-1] != '\n' {
			return nil // a mark within a line: not between the shell's writes
		}
		b.WriteString(raw[prev:m] + cut)
		prev = m
	}
	b.WriteString(raw[prev:])
	parts := strings.Split(normalizeCliCase(b.String()), cut)
	if strings.Join(parts, "") != out {
		return nil
	}
	perLine := make([]string, lines)
	copy(perLine, parts[1:])
	perLine[0] = parts[0] + perLine[0]
	for _, p := range perLine {
		if p != "" && !strings.HasSuffix(p, "\n") {
			return nil
		}
	}
	return perLine
}

// withOutput is tr with zoo cli's output and exit code of r in place of its own.
func (tr *transcript) withOutput(r cliRun) (*transcript, error) {
	if r.perLine == nil {
		return nil, fmt.Errorf("cannot tell which command printed what")
	}
	n := *tr
	n.steps = make([]cliStep, len(tr.steps))
	for i, s := range tr.steps {
		n.steps[i] = cliStep{input: s.input}
		if p := r.perLine[i]; p != "" {
			n.steps[i].output = strings.Split(strings.TrimSuffix(p, "\n"), "\n")
		}
	}
	n.exit = r.exit
	return &n, nil
}

// firstDiff names the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; ; i++ {
		switch {
		case i == len(g) || i == len(w):
			return fmt.Sprintf("%d lines, want %d", len(g)-1, len(w)-1)
		case g[i] != w[i]:
			return fmt.Sprintf("from line %d: %q, want %q", i+1, g[i], w[i])
		}
	}
}

// A transcript file reads back as written, and what it cannot say is an error.
func TestCliTranscriptFileRoundTrips(t *testing.T) {
	const file = "# A case.\n#\nchroot: /app\nsetup: /app /b\nexit: 1\nzkcli differs: why\n\n" +
		">   ls /  \n[]\n\n>\n> get /b\n\nx \n--- zkCli.sh, exit 2\n\n> y\n"
	tr, err := parseTranscript("t", file)
	if err != nil {
		t.Fatal(err)
	}
	if tr.script() != "  ls /  \n\nget /b\n" || tr.want() != "[]\n\n\nx \n" || tr.exit != 1 || tr.chroot != "/app" ||
		strings.Join(tr.setup, ",") != "/app,/b" || tr.zk.why != "why" || tr.zk.out != "\n> y\n" || tr.zk.exit != 2 {
		t.Errorf("parsed %+v", tr)
	}
	if text, err := tr.render(); text != file || err != nil {
		t.Errorf("rendered %q, %v; want %q", text, err, file)
	}
	tr.steps[0].output = []string{"> x"}
	if _, err := tr.render(); err == nil {
		t.Error("rendered output that reads as input")
	}
	for _, bad := range []string{
		"",
		"exit: 0\n",
		"exit 1\n> ls /\n",
		"exit: x\n> ls /\n",
		"zkcli differs: why\n> ls /\n",
		"> ls /\n--- zkCli.sh, exit 1\n",
		"zkcli skip: why\nzkcli differs: why\n> ls /\n--- zkCli.sh, exit 1\n",
	} {
		if _, err := parseTranscript("t", bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}
