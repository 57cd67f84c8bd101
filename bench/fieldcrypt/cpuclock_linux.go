package main

import (
	"syscall"
	"time"
	"unsafe"
)

// cpuTime returns the CPU time the process has used, from
// CLOCK_PROCESS_CPUTIME_ID: unlike the wall clock it does not count time
// spent waiting for a core on a loaded machine.
func cpuTime() time.Duration {
	const clockProcessCPUTimeID = 2
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(errno)
	}
	return time.Duration(ts.Nano())
}

const clockName = "process CPU time"
