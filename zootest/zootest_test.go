package zootest_test

import (
	"context"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/zootest"
)

func TestClusterWriteOnFollowerReadEverywhere(t *testing.T) {
	c := zootest.New(t, 3, zootest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := c.WaitLeader()
	follower := (leader + 1) % 3
	s := c.Session(follower)
	if _, err := s.Create(ctx, "/x", []byte("v"), zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := c.Session(i)
		if err := r.Sync(ctx, "/"); err != nil {
			t.Fatal(err)
		}
		data, _, err := r.Get(ctx, "/x")
		if err != nil || string(data) != "v" {
			t.Fatalf("replica %d: %q %v", i, data, err)
		}
	}
}
