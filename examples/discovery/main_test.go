package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/examples/internal/demo"
)

// TestDemo runs the one-process demo and checks what the client saw: three
// instances join, one changes its payload, the one whose replica crashed
// vanishes, the one that deregisters leaves.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out demo.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("narrative:\n%s", text)

	// The client's lines, in order.
	want := []string{
		"live set: []",
		"+ api-1 joined: {Addr:10.0.0.1:8080 Zone:zone-a Version:1.4.2 Status:serving}",
		"live set: [api-1]",
		"+ api-2 joined",
		"live set: [api-1 api-2]",
		"+ api-3 joined",
		"live set: [api-1 api-2 api-3]",
		"~ api-2 changed: {Addr:10.0.0.2:8080 Zone:zone-b Version:1.4.2 Status:draining}",
		"- api-3 left",
		"live set: [api-1 api-2]",
		"- api-1 left",
		"live set: [api-2]",
	}
	rest := text
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("narrative lacks %q after the lines before it", w)
		}
		rest = rest[i+len(w):]
	}
	if !strings.Contains(text, "api-3 vanished") {
		t.Errorf("narrative lacks the crash's outcome")
	}
}
