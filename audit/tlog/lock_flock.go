//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package tlog

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on the file at path, creating it,
// and returns its release. It blocks while another process (or another
// open of the file in this one) holds it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
