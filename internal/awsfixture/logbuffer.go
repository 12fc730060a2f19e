package awsfixture

import (
	"bytes"
	"slices"
	"sync"
)

// LogBuffer collects log output written by one goroutine (a handler, an
// emulator process) while a test reads it from another.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *LogBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf.Bytes())
}

// String returns what was written so far.
func (b *LogBuffer) String() string { return string(b.Bytes()) }

// Reset forgets what was written so far.
func (b *LogBuffer) Reset() {
	b.mu.Lock()
	b.buf.Reset()
	b.mu.Unlock()
}
