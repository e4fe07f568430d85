// bench_runtime.go — the Go half of the sluice-versus-Go runtime
// benchmarks: the same cases, sizes and output format as
// tests/bench/bench_runtime.c (see there).  Standard library only; build
// with GO111MODULE=off go build bench_runtime.go.
//
// Usage: bench_runtime CASE [N]
// Output: "RESULT <case> <metric> <value>" lines and "INFO procs <n>".
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssBytes is the resident set size from /proc/self/statm, as in C.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return v * int64(os.Getpagesize())
}

var out = bufio.NewWriter(os.Stdout)

func result(name, metric string, v float64) {
	fmt.Fprintf(out, "RESULT %s %s %.3f\n", name, metric, v)
}

func die(msg string) {
	out.Flush()
	fmt.Fprintln(os.Stderr, "bench_runtime:", msg)
	os.Exit(1)
}

// (a) buffered channel.
func chanRound(n int64) float64 {
	ch := make(chan int64, 1024)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(1)
	go func() {
		for v := int64(0); v < n; v++ {
			ch <- v
		}
		wg.Done()
	}()
	var sum int64
	for i := int64(0); i < n; i++ {
		sum += <-ch
	}
	d := time.Since(t0)
	if sum != n*(n-1)/2 {
		die("chan: wrong sum")
	}
	wg.Wait()
	return float64(d.Nanoseconds()) / float64(n)
}

func benchChan(name string, n int64) {
	chanRound(n / 10)
	result(name, "ns_per_msg", chanRound(n))
}

// (b) unbuffered ping-pong.
func pingpongRound(n int64) float64 {
	ping := make(chan int64)
	pong := make(chan int64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for v := range ping {
			pong <- v
		}
		wg.Done()
	}()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		ping <- i
		if <-pong != i {
			die("pong: wrong value")
		}
	}
	d := time.Since(t0)
	close(ping)
	wg.Wait()
	return float64(d.Nanoseconds()) / float64(n)
}

func benchPingpong(name string, n int64) {
	pingpongRound(n / 10)
	result(name, "ns_per_roundtrip", pingpongRound(n))
}

// (c) and (e) parked goroutines.
func benchSpawn(name string, n int64) {
	spawnRound(name, n, false)
}

// (c') a second round, with the first round's stacks cached.
func benchSpawnwarm(name string, n int64) {
	spawnRound(name, n, true)
	spawnRound(name, n, false)
}

func spawnRound(name string, n int64, quiet bool) {
	gate := make(chan struct{})
	var started, done sync.WaitGroup
	rss0 := rssBytes()
	t0 := time.Now()
	started.Add(int(n))
	done.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			started.Done()
			if _, ok := <-gate; ok {
				die("parker: value on gate")
			}
			done.Done()
		}()
	}
	started.Wait()
	t1 := time.Now()
	rss1 := rssBytes()
	close(gate)
	done.Wait()
	t2 := time.Now()

	if quiet {
		return
	}
	result(name, "goroutines", float64(n))
	result(name, "total_ms", float64(t2.Sub(t0).Nanoseconds())/1e6)
	result(name, "us_per_goroutine",
		float64(t2.Sub(t0).Nanoseconds())/1e3/float64(n))
	result(name, "spawn_park_ms", float64(t1.Sub(t0).Nanoseconds())/1e6)
	result(name, "release_ms", float64(t2.Sub(t1).Nanoseconds())/1e6)
	result(name, "rss_kib_per_goroutine",
		float64(rss1-rss0)/1024/float64(n))
	result(name, "rss_parked_mib", float64(rss1)/1048576)
	result(name, "ok", 1)
}

// (d) select over four channels, one ready (prefilled).
const selChunk = 1024

func selectRound(n int64) float64 {
	var ch [4]chan int64
	for k := range ch {
		ch[k] = make(chan int64, selChunk)
	}
	var total time.Duration
	var done int64
	for done = 0; done < n; done += selChunk {
		for j := int64(0); j < selChunk; j++ {
			ch[2] <- j
		}
		t := time.Now()
		for i := int64(0); i < selChunk; i++ {
			var v int64
			chosen := -1
			select {
			case v = <-ch[0]:
				chosen = 0
			case v = <-ch[1]:
				chosen = 1
			case v = <-ch[2]:
				chosen = 2
			case v = <-ch[3]:
				chosen = 3
			}
			if chosen != 2 || v != i {
				die("select: wrong case")
			}
		}
		total += time.Since(t)
	}
	return float64(total.Nanoseconds()) / float64(done)
}

func benchSelect(name string, n int64) {
	selectRound(n / 10)
	result(name, "ns_per_select", selectRound(n))
}

// (d') the ready channel kept fed by a sender goroutine.
func selectfedRound(n int64) float64 {
	var ch [4]chan int64
	for k := range ch {
		ch[k] = make(chan int64, selChunk)
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(1)
	go func() {
		for v := int64(0); v < n; v++ {
			ch[2] <- v
		}
		wg.Done()
	}()
	var sum int64
	for i := int64(0); i < n; i++ {
		var v int64
		chosen := -1
		select {
		case v = <-ch[0]:
			chosen = 0
		case v = <-ch[1]:
			chosen = 1
		case v = <-ch[2]:
			chosen = 2
		case v = <-ch[3]:
			chosen = 3
		}
		if chosen != 2 {
			die("selectfed: wrong case")
		}
		sum += v
	}
	d := time.Since(t0)
	if sum != n*(n-1)/2 {
		die("selectfed: wrong sum")
	}
	wg.Wait()
	return float64(d.Nanoseconds()) / float64(n)
}

func benchSelectfed(name string, n int64) {
	selectfedRound(n / 10)
	result(name, "ns_per_select", selectfedRound(n))
}

// (f) ping-pong of one byte over two pipes (os.Pipe: the netpoller).
func pipeRound(n int64) float64 {
	pingR, pingW, err := os.Pipe()
	if err != nil {
		die("pipe: " + err.Error())
	}
	pongR, pongW, err := os.Pipe()
	if err != nil {
		die("pipe: " + err.Error())
	}
	done := make(chan struct{})
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := pingR.Read(b); err != nil {
				break // io.EOF once pingW is closed
			}
			if _, err := pongW.Write(b); err != nil {
				die("pipe pong: " + err.Error())
			}
		}
		close(done)
	}()
	b := make([]byte, 1)
	back := make([]byte, 1)
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		b[0] = byte(i)
		if _, err := pingW.Write(b); err != nil {
			die("pipe ping: " + err.Error())
		}
		if _, err := pongR.Read(back); err != nil || back[0] != b[0] {
			die("pipe pong read")
		}
	}
	d := time.Since(t0)
	pingW.Close()
	<-done
	pingR.Close()
	pongR.Close()
	pongW.Close()
	return float64(d.Nanoseconds()) / float64(n)
}

func benchPipe(name string, n int64) {
	pipeRound(n / 10)
	result(name, "ns_per_roundtrip", pipeRound(n))
}

// (g) blocking calls one after another: a 64-byte ReadAt of a small file
// (a blocking system call, which Go makes on the goroutine's own thread).
func blockingRound(f *os.File, n int64) float64 {
	buf := make([]byte, 64)
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		if k, err := f.ReadAt(buf, 0); err != nil || k != len(buf) {
			die("pread")
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

// blockingFile: a 4 KiB file, already removed.
func blockingFile() *os.File {
	f, err := os.CreateTemp("", "sluice-bench-")
	if err != nil {
		die("temporary file: " + err.Error())
	}
	os.Remove(f.Name())
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		die("temporary file: " + err.Error())
	}
	return f
}

func benchBlocking(name string, n int64) {
	f := blockingFile()
	blockingRound(f, n/10)
	result(name, "ns_per_call", blockingRound(f, n))
	f.Close()
}

// (g') the same calls made by 4 goroutines at once, n in all: wall ns
// per call.
func blocking4Round(f *os.File, n int64) float64 {
	const callers = 4
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(callers)
	for i := 0; i < callers; i++ {
		go func() {
			blockingRound(f, n/callers)
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n/callers*callers)
}

func benchBlocking4(name string, n int64) {
	f := blockingFile()
	blocking4Round(f, n/10)
	result(name, "ns_per_call", blocking4Round(f, n))
	f.Close()
}

type benchCase struct {
	fn func(string, int64)
	n  int64
}

var cases = map[string]benchCase{
	"chan":      {benchChan, 5000000},
	"pingpong":  {benchPingpong, 1000000},
	"spawn":     {benchSpawn, 100000},
	"spawnwarm": {benchSpawnwarm, 100000},
	"select":    {benchSelect, 5000000},
	"selectfed": {benchSelectfed, 5000000},
	"million":   {benchSpawn, 1000000},
	"pipe":      {benchPipe, 200000},
	"blocking":  {benchBlocking, 200000},
	"blocking4": {benchBlocking4, 200000},
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: bench_runtime CASE [N]")
		os.Exit(2)
	}
	c, ok := cases[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "bench_runtime: unknown case", os.Args[1])
		os.Exit(2)
	}
	n := c.n
	if len(os.Args) == 3 {
		v, err := strconv.ParseInt(os.Args[2], 10, 64)
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "bench_runtime: bad N")
			os.Exit(2)
		}
		n = v
	}
	fmt.Fprintf(out, "INFO procs %d\n", runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "INFO go_version %s\n", runtime.Version())
	c.fn(os.Args[1], n)
	out.Flush()
}
