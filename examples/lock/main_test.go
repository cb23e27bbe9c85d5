package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/examples/internal/demo"
)

// TestDemo runs the one-process demo and checks its story: the count goes up
// by one per holder, each holder's token is higher than the last one written,
// the lock passes on when the frozen holder's session expires, and the frozen
// holder's late write is refused.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out demo.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("narrative:\n%s", text)

	if strings.Contains(text, "VIOLATION") {
		t.Errorf("two holders at once")
	}
	re := regexp.MustCompile(`token (\d+) \(last written: (\d+)\): count (\d+) -> (\d+)`)
	ms := re.FindAllStringSubmatch(text, -1)
	if len(ms) != 3*rounds {
		t.Errorf("%d increments under the lock, want %d", len(ms), 3*rounds)
	}
	for i, m := range ms {
		tok, _ := strconv.Atoi(m[1])
		last, _ := strconv.Atoi(m[2])
		from, _ := strconv.Atoi(m[3])
		to, _ := strconv.Atoi(m[4])
		if tok <= last {
			t.Errorf("increment %d: token %d not above the last written %d", i, tok, last)
		}
		if from != i || to != i+1 {
			t.Errorf("increment %d: count %d -> %d", i, from, to)
		}
	}
	for _, want := range []string{
		"tokens rose with every holder: true",
		"then freezes",
		"once the ensemble expired worker-3's session",
		"count 9 -> 10",
		"write refused: stale fencing token",
		"Unlock: recipe: lost",
		`final counter /examples/lock/counter = {"count":10,`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("narrative lacks %q", want)
		}
	}
}
