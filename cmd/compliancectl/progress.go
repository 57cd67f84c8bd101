package main

import (
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

var termIsTerminal = term.IsTerminal

// progress counts the work of a long command. On a terminal it draws a bar
// with the rate and the time left on standard error; elsewhere (a pipe, a
// file, a CI log, --json) it draws nothing.
type progress struct {
	bar *progressbar.ProgressBar
}

// progress returns a progress for total units of work (-1 when unknown),
// described as desc, counted in unit ("entries", "rows").
func (e *env) progress(total int64, desc, unit string) *progress {
	if e.json || e.noProgress || !isTerminal(e.stderr) {
		return &progress{}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return &progress{bar: bar}
}

// Add records n more units done.
func (p *progress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Set records that n units are done in all.
func (p *progress) Set(n int64) {
	if p.bar != nil {
		_ = p.bar.Set64(n)
	}
}

// Finish removes the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
