package main

import "syscall"

// procAttr puts a server in its own process group, so that a terminal's
// interrupt reaches only the load test, which stops its servers itself,
// and has the kernel kill it if the load test dies first (a test binary
// killed by its -timeout runs no cleanup). The signal follows the thread
// that started the server, not the process; Go ends a thread only when a
// goroutine locked to it exits, which nothing here does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
