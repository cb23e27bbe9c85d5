package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/examples/internal/demo"
)

// TestDemo runs the one-process demo and checks that both services, on the
// replicas the admin does not use, saw each typed change, and kept the last
// good config while the document did not decode.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out demo.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("narrative:\n%s", text)

	for _, svc := range []string{"svc-a", "svc-b"} {
		for _, want := range []string{
			"cached /examples/config: [app db]; db = {Host:db1:5432 Pool:4}",
			"config version 0: {LogLevel:info MaxConns:10 Features:[search]}",
			`config version 1: LogLevel "info" -> "debug", MaxConns 10 -> 20`,
			"version 2 does not decode",
			`config version 3: LogLevel "debug" -> "warn", Features ["search"] -> ["search" "dark-mode"]`,
		} {
			if !hasLine(text, svc, want) {
				t.Errorf("%s never printed %q", svc, want)
			}
		}
		if !hasLine(text, svc, "keeping {LogLevel:debug MaxConns:20 Features:[search]}") {
			t.Errorf("%s did not keep the last good config", svc)
		}
	}
}

// hasLine reports whether a line of text mentions who and contains want.
func hasLine(text, who, want string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, who) && strings.Contains(l, want) {
			return true
		}
	}
	return false
}
