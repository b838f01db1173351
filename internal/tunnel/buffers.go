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
