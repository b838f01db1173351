package tunnel

import "testing"

// A lent body is as long as asked, in the smallest class that holds it,
// up to a frame's largest; a longer one is made to measure.
func TestBodiesBySizeClass(t *testing.T) {
	for _, c := range []struct{ n, cap int }{{1, 512}, {512, 512}, {513, 1024}, {4097, 8192}, {streamWindow - 1, streamWindow}, {streamWindow, streamWindow}, {streamWindow + 1, streamWindow + 1}} {
		b := lend(c.n)
		if len(*b) != c.n || cap(*b) != c.cap {
			t.Errorf("lend(%d): len %d cap %d, want cap %d", c.n, len(*b), cap(*b), c.cap)
		}
		giveBack(b)
		if again := lend(c.n); len(*again) != c.n || cap(*again) != c.cap {
			t.Errorf("lend(%d) after a put: len %d cap %d", c.n, len(*again), cap(*again))
		}
	}
}
