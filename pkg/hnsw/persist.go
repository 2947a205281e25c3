package hnsw

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"sync/atomic"
)

// File format (little endian), version 1:
//
//	magic "HNSWGO\x00\x01" | header | nodes... | crc32c of everything before
//	header: dim u32, metric u8, m u16, efConstruction u32, efSearch u32,
//	        seed u64, entry id u32, entry level u8 (0xff: empty), node count u32
//	node:   id u32, flags u8 (bit 0: deleted), level u8, dim × f32,
//	        then for each level 0..level: count u16, count × u32 ids
const fileMagic = "HNSWGO\x00\x01"

// ErrCorrupt is returned by Load for input that is not a valid index file.
var ErrCorrupt = errors.New("corrupt hnsw index file")

type countingWriter struct {
	w   *bufio.Writer
	n   int64
	crc hash.Hash32
	err error
	buf [8]byte
}

func (c *countingWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.crc.Write(p[:n])
	c.err = err
}

func (c *countingWriter) u8(v uint8) { c.buf[0] = v; c.write(c.buf[:1]) }
func (c *countingWriter) u16(v uint16) {
	binary.LittleEndian.PutUint16(c.buf[:], v)
	c.write(c.buf[:2])
}
func (c *countingWriter) u32(v uint32) {
	binary.LittleEndian.PutUint32(c.buf[:], v)
	c.write(c.buf[:4])
}
func (c *countingWriter) u64(v uint64) {
	binary.LittleEndian.PutUint64(c.buf[:], v)
	c.write(c.buf[:8])
}

// quantizedFlag is the metric byte's bit for a quantized index.
const quantizedFlag = 0x80

// WriteTo writes the index to w in a versioned binary format with a CRC-32C
// trailer; Load reads it back. It implements io.WriterTo.
//
// WriteTo may run concurrently with searches, adds and deletes. Points added
// while it runs may or may not be included (their links are dropped when the
// point is not); the file is always self-consistent. For an exact snapshot,
// call it while no Add or Delete runs.
func (ix *Index) WriteTo(w io.Writer) (int64, error) {
	segs := *ix.segs.Load()
	entry := ix.entry.Load()
	// Pass 1: the set of nodes to write, fixed before any link is read.
	included := make([]bool, len(segs)*segSize)
	count := 0
	for si, s := range segs {
		if s == nil {
			continue
		}
		for off := range s.state {
			if s.state[off].Load()&statePresent != 0 {
				included[si<<segBits|off] = true
				count++
			}
		}
	}
	cw := &countingWriter{w: bufio.NewWriterSize(w, 1<<16), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	cw.write([]byte(fileMagic))
	cw.u32(uint32(ix.dim))
	// The metric byte's high bit marks a quantized index; its vectors are
	// written decoded and re-quantized exactly on load.
	mb := uint8(ix.metric)
	if ix.quantile > 0 {
		mb |= quantizedFlag
	}
	cw.u8(mb)
	cw.u16(uint16(ix.m))
	cw.u32(uint32(ix.efConstr))
	cw.u32(uint32(ix.efSearch))
	cw.u64(ix.seed)
	if entry == 0 {
		cw.u32(0)
		cw.u8(0xff)
	} else {
		id, level := unpackEntry(entry)
		cw.u32(id)
		cw.u8(uint8(level))
	}
	cw.u32(uint32(count))
	var ids []uint32
	var buf []float32
	for si, s := range segs {
		if s == nil {
			continue
		}
		for off := range s.state {
			id := uint32(si<<segBits | off)
			if !included[id] {
				continue
			}
			var flags uint8
			if s.state[off].Load()&stateDeleted != 0 {
				flags = 1
			}
			level := int(s.level[off])
			cw.u32(id)
			cw.u8(flags)
			cw.u8(uint8(level))
			for _, f := range ix.stored(id, &buf) {
				cw.u32(math.Float32bits(f))
			}
			for l := 0; l <= level; l++ {
				ids = ids[:0]
				list := ix.links(id, l)
				n := int(atomic.LoadUint32(&list[0]))
				for i := 1; i <= n; i++ {
					if nb := atomic.LoadUint32(&list[i]); int(nb) < len(included) && included[nb] {
						ids = append(ids, nb)
					}
				}
				cw.u16(uint16(len(ids)))
				for _, nb := range ids {
					cw.u32(nb)
				}
			}
		}
	}
	if cw.err != nil {
		return cw.n, fmt.Errorf("write hnsw index: %w", cw.err)
	}
	sum := cw.crc.Sum32()
	binary.LittleEndian.PutUint32(cw.buf[:], sum)
	n, err := cw.w.Write(cw.buf[:4])
	cw.n += int64(n)
	if err == nil {
		err = cw.w.Flush()
	}
	if err != nil {
		return cw.n, fmt.Errorf("write hnsw index: %w", err)
	}
	return cw.n, nil
}

type checkedReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	err error
	buf [8]byte
}

func (c *checkedReader) read(p []byte) {
	if c.err != nil {
		return
	}
	if _, err := io.ReadFull(c.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		c.err = err
		return
	}
	c.crc.Write(p)
}

func (c *checkedReader) u8() uint8   { c.read(c.buf[:1]); return c.buf[0] }
func (c *checkedReader) u16() uint16 { c.read(c.buf[:2]); return binary.LittleEndian.Uint16(c.buf[:]) }
func (c *checkedReader) u32() uint32 { c.read(c.buf[:4]); return binary.LittleEndian.Uint32(c.buf[:]) }
func (c *checkedReader) u64() uint64 { c.read(c.buf[:8]); return binary.LittleEndian.Uint64(c.buf[:]) }

// Load reads an index written by WriteTo. It validates the whole input
// (structure, id ranges, link targets, checksum) and returns an error wrapping
// ErrCorrupt, never a half-built index, for input it does not accept.
func Load(r io.Reader) (*Index, error) {
	cr := &checkedReader{r: bufio.NewReaderSize(r, 1<<16), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	var magic [len(fileMagic)]byte
	cr.read(magic[:])
	if cr.err != nil {
		return nil, fmt.Errorf("load hnsw index: %w: %w", ErrCorrupt, cr.err)
	}
	if string(magic[:]) != fileMagic {
		return nil, fmt.Errorf("load hnsw index: %w: bad magic or version", ErrCorrupt)
	}
	dim := int(cr.u32())
	mb := cr.u8()
	metric := Metric(mb &^ quantizedFlag)
	m := int(cr.u16())
	efc := int(cr.u32())
	efs := int(cr.u32())
	seed := cr.u64()
	entryID := cr.u32()
	entryLevel := cr.u8()
	count := cr.u32()
	if cr.err != nil {
		return nil, fmt.Errorf("load hnsw index: %w: %w", ErrCorrupt, cr.err)
	}
	opts := []Option{M(m), EfConstruction(efc), EfSearch(efs), Seed(seed)}
	if mb&quantizedFlag != 0 {
		opts = append(opts, ScalarInt8(1))
	}
	ix, err := New(dim, metric, opts...)
	if err != nil {
		return nil, fmt.Errorf("load hnsw index: %w: %w", ErrCorrupt, err)
	}
	if count > MaxID {
		return nil, fmt.Errorf("load hnsw index: %w: node count %d", ErrCorrupt, count)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("load hnsw index: %w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	vec := make([]float32, dim)
	for range count {
		id := cr.u32()
		flags := cr.u8()
		level := int(cr.u8())
		if cr.err != nil {
			break
		}
		if id > MaxID || flags > 1 || level >= maxLevel {
			return nil, corrupt("node %d: flags %d, level %d", id, flags, level)
		}
		for i := range vec {
			vec[i] = math.Float32frombits(cr.u32())
		}
		if cr.err != nil {
			break
		}
		seg := ix.ensureSegment(id)
		off := int(id & segMask)
		if seg.state[off].Load() != 0 {
			return nil, corrupt("node %d appears twice", id)
		}
		ix.put(seg, off, vec, 1)
		seg.level[off] = uint8(level)
		if level > 0 {
			seg.upper[off] = make([]uint32, level*(ix.m+1))
		}
		for l := 0; l <= level; l++ {
			n := int(cr.u16())
			mmax := ix.m
			if l == 0 {
				mmax = ix.m0
			}
			if cr.err != nil {
				break
			}
			if n > mmax {
				return nil, corrupt("node %d level %d: %d links, max %d", id, l, n, mmax)
			}
			list := ix.links(id, l)
			for i := 1; i <= n; i++ {
				list[i] = cr.u32()
			}
			list[0] = uint32(n)
		}
		st := uint32(stateClaimed | statePresent)
		if flags&1 != 0 {
			st |= stateDeleted
			ix.deleted.Add(1)
		} else {
			ix.live.Add(1)
		}
		seg.state[off].Store(st)
	}
	if cr.err != nil {
		return nil, fmt.Errorf("load hnsw index: %w: %w", ErrCorrupt, cr.err)
	}
	want := cr.crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(cr.r, tail[:]); err != nil {
		return nil, fmt.Errorf("load hnsw index: %w: missing checksum", ErrCorrupt)
	}
	if binary.LittleEndian.Uint32(tail[:]) != want {
		return nil, corrupt("checksum mismatch")
	}
	// Every link must point at a node that exists on that level, and the
	// entry point must be a node on the top level.
	topLevel := -1
	for si, s := range *ix.segs.Load() {
		if s == nil {
			continue
		}
		for off := range s.state {
			if s.state[off].Load() == 0 {
				continue
			}
			id := uint32(si<<segBits | off)
			level := int(s.level[off])
			topLevel = max(topLevel, level)
			for l := 0; l <= level; l++ {
				list := ix.links(id, l)
				for _, nb := range list[1 : list[0]+1] {
					ns := ix.segment(nb)
					if ns == nil || ns.state[nb&segMask].Load() == 0 || int(ns.level[nb&segMask]) < l || nb == id {
						return nil, corrupt("node %d level %d links to invalid node %d", id, l, nb)
					}
					if l == 0 {
						ns.indeg[nb&segMask].Add(1)
					}
				}
			}
		}
	}
	switch {
	case count == 0 && entryLevel != 0xff:
		return nil, corrupt("empty index with an entry point")
	case count > 0:
		es := ix.segment(entryID)
		if es == nil || es.state[entryID&segMask].Load() == 0 || int(entryLevel) != topLevel || int(es.level[entryID&segMask]) != topLevel {
			return nil, corrupt("entry point %d level %d is not a top-level node", entryID, entryLevel)
		}
		ix.entry.Store(packEntry(entryID, topLevel))
	}
	return ix, nil
}
