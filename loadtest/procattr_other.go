//go:build !linux

package main

import "syscall"

// procAttr puts a server in its own process group, so that a terminal's
// interrupt reaches only the load test, which stops its servers itself.
//
// TODO: outside Linux there is no parent-death signal, so a load test
// killed outright (a test binary past its -timeout) leaves its servers
// running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
