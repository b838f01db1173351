package tunnel

import (
	"math/bits"
	"net/http/httputil"
	"sync"
)

// The tunnel's buffers are lent by size class (powers of two, from 512
// bytes to a frame's largest, streamWindow) and given back once copied out:
// the bodies of the data frames the hub reads, the frames it gathers into
// one write, and the buffers the reverse proxies at both ends copy bodies
// with. Allocated per use, they were most of what the hub allocated while
// proxying small requests, and the garbage collections that followed were
// most of the slowest requests' time.
var classes [maxShift - minShift + 1]sync.Pool

const (
	minShift = 9
	maxShift = 18 // streamWindow is 1<<maxShift
)

// class is the class of the smallest buffer that holds n bytes; past the
// last class for n over streamWindow.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// lend lends a buffer of length n; one longer than streamWindow is made,
// and not kept when given back.
func lend(n int) *[]byte {
	c := class(n)
	if c >= len(classes) {
		b := make([]byte, n)
		return &b
	}
	if b, ok := classes[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(minShift+c))
	return &b
}

// giveBack takes back a buffer lend lent.
func giveBack(b *[]byte) {
	if c := class(cap(*b)); c < len(classes) && cap(*b) == 1<<(minShift+c) {
		classes[c].Put(b)
	}
}

// Buffers is the BufferPool of the reverse proxies at both ends of a
// tunnel: without one, a ReverseProxy allocates 32 KB per request.
var Buffers httputil.BufferPool = proxyBuffers{}

type proxyBuffers struct{}

func (proxyBuffers) Get() []byte  { return *lend(32 << 10) }
func (proxyBuffers) Put(b []byte) { giveBack(&b) }
