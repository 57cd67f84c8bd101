package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       time.Duration
		ok         bool
	}{
		// utime 150 and stime 50 ticks: 2 s at USER_HZ 100.
		{"plain", "4242 (postgres) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 0 0", 2 * time.Second, true},
		// A command name holding spaces and a parenthesis must not shift the fields.
		{"odd name", "7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, true},
		{"truncated", "7 (x) R 1 7", 0, false},
		{"no name", "garbage", 0, false},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0 0 20 0 1 0 1 0 0", 0, false},
	} {
		got, ok := parseStat([]byte(tc.line))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: parseStat = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestProcCPUReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, ok := procCPU(os.Getpid())
	if !ok {
		t.Fatal("procCPU could not read this process")
	}
	// Work until the count moves past a tick; a loaded machine may give
	// this process little of its time, hence the generous bound.
	deadline := time.Now().Add(10 * time.Second)
	after := before
	for after <= before && time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			sink += i
		}
		if after, ok = procCPU(os.Getpid()); !ok {
			t.Fatal("procCPU could not read this process")
		}
	}
	if after <= before {
		t.Fatalf("CPU time stayed at %v after 10s of work", before)
	}
}

var sink int
