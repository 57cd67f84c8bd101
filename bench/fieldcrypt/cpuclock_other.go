//go:build !linux

package main

import "time"

var start = time.Now()

// cpuTime falls back to the wall clock where the process CPU clock is not
// wired.
func cpuTime() time.Duration { return time.Since(start) }

const clockName = "wall time"
