package tunnel

import (
	"net/http/httputil"
	"sync"
)

// Buffers lends the buffers the reverse proxies at both ends of a tunnel
// copy bodies with. A ReverseProxy without a pool allocates 32 KB per
// request: half of what the hub allocated while proxying small requests,
// and the garbage collections that followed were most of the slowest
// requests' time.
var Buffers httputil.BufferPool = buffers{}

type buffers struct{}

var bufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (buffers) Get() []byte { return bufferPool.Get().(*[32 << 10]byte)[:] }

func (buffers) Put(b []byte) {
	if len(b) == 32<<10 {
		bufferPool.Put((*[32 << 10]byte)(b))
	}
}

// bodies lends the bodies of the data frames the hub reads, by size class
// (powers of two, up to a frame's largest, streamWindow): a body lives only
// until its stream's reader has copied it out, and allocating one per frame
// was a third of what the hub allocated while proxying.
var bodies [bodyClasses]sync.Pool

const (
	minBodyShift = 9 // 512 bytes
	bodyClasses  = 18 - minBodyShift + 1
)

// bodyClass is the class of the smallest buffer that holds n bytes.
func bodyClass(n int) int {
	c := 0
	for n > 1<<(minBodyShift+c) {
		c++
	}
	return c
}

// getBody lends a buffer of length n; n is at most streamWindow.
func getBody(n int) *[]byte {
	c := bodyClass(n)
	if b, ok := bodies[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(minBodyShift+c))
	return &b
}

// putBody takes back a buffer getBody lent.
func putBody(b *[]byte) {
	if c := bodyClass(cap(*b)); cap(*b) == 1<<(minBodyShift+c) {
		bodies[c].Put(b)
	}
}

// writes lends the buffers a hubSession gathers a small frame and the
// control frames before it in, to write them as one TLS record.
var writes = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10+8*headerSize)
	return &b
}}
