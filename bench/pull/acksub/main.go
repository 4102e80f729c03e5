// Command acksub is the benchmark's baseline subscriber: Google's Go client
// (cloud.google.com/go/pubsub from Debian's golang-google-cloud-dev) receiving
// on one StreamingPull stream with the same flow control as jobrelay, and
// doing nothing with a message but acknowledging it. It shows how fast the
// emulator hands out messages when the subscriber costs almost nothing.
//
// It needs PUBSUB_EMULATOR_HOST (the client then uses plaintext and no
// credentials) and runs until SIGTERM/SIGINT or until -count messages were
// received (then it stops receiving, which flushes the acks, and exits 0).
// It prints "RECEIVED <n>" on stdout when it stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"cloud.google.com/go/pubsub"
)

func main() {
	project := flag.String("project", "bench", "project of the subscription")
	sub := flag.String("sub", "jobrelay", "subscription id")
	maxMsgs := flag.Int("max-messages", 1000, "flow control: outstanding messages at most")
	streams := flag.Int("streams", 1, "StreamingPull streams (NumGoroutines)")
	count := flag.Int64("count", 0, "stop after this many messages (0: run until a signal)")
	flag.Parse()
	host := os.Getenv("PUBSUB_EMULATOR_HOST")
	if !strings.HasPrefix(host, "127.") && !strings.HasPrefix(host, "localhost:") && !strings.HasPrefix(host, "[::1]:") {
		fmt.Fprintf(os.Stderr, "acksub: PUBSUB_EMULATOR_HOST=%q must be a loopback address\n", host)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; cancel() }()

	client, err := pubsub.NewClient(ctx, *project)
	if err != nil {
		fmt.Fprintf(os.Stderr, "acksub: %v\n", err)
		os.Exit(1)
	}
	s := client.Subscription(*sub)
	s.ReceiveSettings.MaxOutstandingMessages = *maxMsgs
	s.ReceiveSettings.NumGoroutines = *streams
	var n int64
	err = s.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		if atomic.AddInt64(&n, 1) == *count {
			cancel()
		}
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "acksub: receive: %v\n", err)
		os.Exit(1)
	}
	client.Close()
	fmt.Printf("RECEIVED %d\n", atomic.LoadInt64(&n))
}
