package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

const zkCli = "/usr/share/zookeeper/bin/zkCli.sh"

var (
	timeLine = regexp.MustCompile(`^([cm]time = ).*$`)
	zxidLine = regexp.MustCompile(`^([cmp]Zxid = )(0x[0-9a-f]+)$`)
)

// normalizeZkCli keeps what zkCli.sh prints for the commands: it drops log
// lines and the "Connecting to" banner, blanks times, and renames zxids in
// order of first appearance (Z1, Z2, ...), so that equal zxids stay equal and
// different ones stay different while their values may differ between servers.
func normalizeZkCli(out string) string {
	var b strings.Builder
	zxids := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "20") && len(line) > 4 && line[4] == '-' || // log4j timestamp
			strings.Contains(line, "log4j") || strings.Contains(line, "SLF4J") ||
			strings.HasPrefix(line, "Connecting to ") {
			continue
		}
		line = timeLine.ReplaceAllString(line, "${1}T")
		if m := zxidLine.FindStringSubmatch(line); m != nil {
			if _, ok := zxids[m[2]]; !ok {
				zxids[m[2]] = fmt.Sprintf("Z%d", len(zxids)+1)
			}
			line = m[1] + zxids[m[2]]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// Seed 000's zkCli session, extended with sequential and ephemeral nodes,
// conditional sets and errors, against a 3-member zoo ensemble through a
// follower. The golden transcript is the output of the same script against
// Apache ZooKeeper 3.8 (Debian's package), normalized the same way.
func TestZkCliSessionOnZooMatchesZooKeeper(t *testing.T) {
	cli := needTool(t, zkCli, "zookeeper")
	if path := os.Getenv("ZOO_GOLDEN_FROM"); path != "" {
		// Regenerate the golden file from a transcript of real ZooKeeper.
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/seed000.golden", []byte(normalizeZkCli(string(raw))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/seed000.golden")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("testdata/seed000.zk")
	if err != nil {
		t.Fatal(err)
	}
	e := startEnsemble(t, 3)
	var follower *member
	for _, m := range e.members {
		if mode(m) == "follower" {
			follower = m
			break
		}
	}
	if follower == nil {
		t.Fatal("no follower")
	}
	cmd := exec.Command(cli, "-server", follower.clientAddr)
	cmd.Stdin = bytes.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		// zkCli.sh exits 1 after a failed last command, as the script's
		// "delete /myapp" is; the transcript is what counts.
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("zkCli.sh did not finish:\n%s", out.String())
	}
	if got := normalizeZkCli(out.String()); got != string(want) {
		t.Fatalf("zkCli transcript differs from ZooKeeper's.\n--- got\n%s\n--- want (ZooKeeper 3.8)\n%s", got, want)
	}
}
