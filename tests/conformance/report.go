package main

import (
	"fmt"
	"sync"
	"time"
)

// report prints one PASS or FAIL line per check and counts them. A failed essential check
// (must) aborts the run: what follows would only fail for the same reason.
type report struct {
	mu       sync.Mutex
	passed   int
	failed   int
	start    time.Time
	cleanups []func()
}

// abort is the panic value of a failed essential check; run recovers it.
type abort struct{ name string }

func newReport() *report {
	return &report{start: time.Now()}
}

// check prints the outcome of one check and returns whether it passed.
func (r *report) check(name string, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := time.Since(r.start).Seconds()
	if err != nil {
		r.failed++
		fmt.Printf("FAIL [%6.1fs] %s: %v\n", elapsed, name, err)
		return false
	}
	r.passed++
	fmt.Printf("PASS [%6.1fs] %s\n", elapsed, name)
	return true
}

// must is check for a step the rest of the run depends on: on failure the run stops.
func (r *report) must(name string, err error) {
	if !r.check(name, err) {
		panic(abort{name})
	}
}

// note prints a line that is not a check (what is being done, timings).
func (r *report) note(format string, args ...interface{}) {
	fmt.Printf("....   [%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// onExit registers work to do when the run ends, however it ends (last registered, first run).
func (r *report) onExit(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// finish runs the cleanups, prints the totals and returns the exit status.
func (r *report) finish() int {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	// The count is the last line, alone, in the plain form CI reads.
	fmt.Printf("conformance: ran for %.1f s\n", time.Since(r.start).Seconds())
	fmt.Printf("conformance: %d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		return 1
	}
	return 0
}

// errorf is fmt.Errorf, shorter at the many call sites that build a check's error.
func errorf(format string, args ...interface{}) error {
	return fmt.Errorf(format, args...)
}
