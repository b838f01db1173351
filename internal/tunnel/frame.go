package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The yamux framing that hashicorp/yamux speaks at the agent's end, as much
// of it as the hub's end (hubSession) needs: a 12-byte header (version,
// type, flags, stream, length), then length bytes of data for a data frame.
const (
	frameVersion = 0
	headerSize   = 12

	typeData         = 0
	typeWindowUpdate = 1
	typePing         = 2
	typeGoAway       = 3

	flagSYN = 1
	flagACK = 2
	flagFIN = 4
	flagRST = 8

	// streamWindow is every stream's receive window when it opens, at
	// both ends; a data frame is never longer.
	streamWindow = 256 << 10

	goAwayNormal   = 0
	goAwayProtocol = 1
)

type header [headerSize]byte

func frameHeader(typ uint8, flags uint16, stream, length uint32) header {
	var h header
	h[0], h[1] = frameVersion, typ
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], stream)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func (h *header) typ() uint8        { return h[1] }
func (h *header) flags() uint16     { return binary.BigEndian.Uint16(h[2:4]) }
func (h *header) stream() uint32    { return binary.BigEndian.Uint32(h[4:8]) }
func (h *header) length() uint32    { return binary.BigEndian.Uint32(h[8:12]) }
func (h *header) has(f uint16) bool { return h.flags()&f != 0 }

// errProtocol: the agent's end sent what the protocol does not allow.
var errProtocol = errors.New("the agent's end broke the tunnel's protocol")

// check refuses a header the hub cannot take.
func (h *header) check() error {
	switch {
	case h[0] != frameVersion:
		return fmt.Errorf("%w: frame version %d", errProtocol, h[0])
	case h.typ() > typeGoAway:
		return fmt.Errorf("%w: frame type %d", errProtocol, h.typ())
	case h.typ() == typeData && h.length() > streamWindow:
		return fmt.Errorf("%w: a data frame of %d bytes, over the window of %d", errProtocol, h.length(), streamWindow)
	}
	return nil
}
