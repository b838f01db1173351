package tunnel

import "testing"

// A lent body is as long as asked, in the smallest class that holds it,
// up to a frame's largest.
func TestBodiesBySizeClass(t *testing.T) {
	for _, c := range []struct{ n, cap int }{{1, 512}, {512, 512}, {513, 1024}, {4097, 8192}, {streamWindow - 1, streamWindow}, {streamWindow, streamWindow}} {
		b := getBody(c.n)
		if len(*b) != c.n || cap(*b) != c.cap {
			t.Errorf("getBody(%d): len %d cap %d, want cap %d", c.n, len(*b), cap(*b), c.cap)
		}
		putBody(b)
		if again := getBody(c.n); len(*again) != c.n || cap(*again) != c.cap {
			t.Errorf("getBody(%d) after a put: len %d cap %d", c.n, len(*again), cap(*again))
		}
	}
}
