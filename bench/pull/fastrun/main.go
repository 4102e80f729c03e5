// fastrun: a RunJob server that costs next to nothing, for the pull benchmark's
// "is the Run API fake what is measured?" check (docs/benchmarks.md, pull).
//
// It answers every unary call with one fixed google.longrunning.Operation whose
// metadata is an Execution carrying only a name and a log URI, without decoding the request.
// It takes the Run API fake's command line as bench.py gives it (the first
// argument, server.js, is ignored; --port, --stats and --exit-on-stdin-close
// are honoured; --record and --delay-ms are refused, so use it with
// `--phases tp` only) and writes the fake's stats fields that bench.py reads.
// --latency-us N holds every answer N microseconds (calls wait side by side),
// to see what a peer's latency alone does to the client's cost per call.
//
//	bench/pull/run.sh --subjects jobrelay --phases tp --node BUILD/pull/fastrun
//
// Loopback only: it listens on 127.0.0.1.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) String() string { return "proto" }

// protobuf wire helpers: a length-delimited field
func varint(out []byte, n uint64) []byte {
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}

func field(num int, b []byte) []byte {
	out := varint(varint(nil, uint64(num<<3|2)), uint64(len(b)))
	return append(out, b...)
}

func cpuMicros() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Sec*1e6 + int64(ru.Utime.Usec) + ru.Stime.Sec*1e6 + int64(ru.Stime.Usec)
}

func main() {
	port, stats, stdinClose, latUs := 0, "", false, 0
	for i := 1; i < len(os.Args); i++ {
		switch a := os.Args[i]; a {
		case "--port":
			i++
			port, _ = strconv.Atoi(os.Args[i])
		case "--stats":
			i++
			stats = os.Args[i]
		case "--latency-us":
			i++
			latUs, _ = strconv.Atoi(os.Args[i])
		case "--exit-on-stdin-close":
			stdinClose = true
		case "--record", "--delay-ms", "--config":
			fmt.Fprintf(os.Stderr, "fastrun: %s is not supported (use --phases tp)\n", a)
			os.Exit(2)
		}
	}
	exec := append(field(1, []byte("projects/bench/locations/europe-west2/jobs/process-object/executions/process-object-fast")),
		field(26, []byte("https://console.cloud.google.com/logs/viewer?project=bench"))...)
	meta := append(field(1, []byte("type.googleapis.com/google.cloud.run.v2.Execution")), field(2, exec)...)
	answer := append(field(1, []byte("projects/bench/locations/europe-west2/operations/fast")), field(2, meta)...)

	var calls int64
	handler := func(srv interface{}, stream grpc.ServerStream) error {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		atomic.AddInt64(&calls, 1)
		if latUs > 0 {
			time.Sleep(time.Duration(latUs) * time.Microsecond)
		}
		return stream.SendMsg(&answer)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fastrun:", err)
		os.Exit(1)
	}
	s := grpc.NewServer(grpc.CustomCodec(rawCodec{}), grpc.UnknownServiceHandler(handler))
	cpu0 := cpuMicros()
	done := make(chan struct{}, 2)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; done <- struct{}{} }()
	if stdinClose {
		go func() { io.Copy(io.Discard, os.Stdin); done <- struct{}{} }()
	}
	go s.Serve(ln)
	fmt.Printf("LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	<-done
	s.Stop()
	n := atomic.LoadInt64(&calls)
	used := cpuMicros() - cpu0
	out := map[string]interface{}{
		"calls":    n,
		"byMethod": map[string]interface{}{"RunJob": map[string]interface{}{"total": n}},
		"cpu":      map[string]interface{}{"sinceListening": map[string]interface{}{"totalMicros": used}},
	}
	if stats != "" {
		b, _ := json.Marshal(out)
		tmp := stats + ".tmp"
		if os.WriteFile(tmp, b, 0o644) == nil {
			os.Rename(tmp, stats)
		}
	}
}
