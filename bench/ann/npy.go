package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// writeNPY writes a row-major 2-D array as a NumPy .npy (format 1.0) file.
// data is []float32 ('<f4') or []int32 ('<i4').
func writeNPY(path string, rows, cols int, data any) (err error) {
	var descr string
	switch d := data.(type) {
	case []float32:
		descr = "<f4"
		if len(d) != rows*cols {
			return fmt.Errorf("write %s: %d values for shape (%d, %d)", path, len(d), rows, cols)
		}
	case []int32:
		descr = "<i4"
		if len(d) != rows*cols {
			return fmt.Errorf("write %s: %d values for shape (%d, %d)", path, len(d), rows, cols)
		}
	default:
		return fmt.Errorf("write %s: unsupported type %T", path, data)
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, cols)
	// magic (6) + version (2) + header length (2) + header + '\n', padded to 64.
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create npy: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close npy: %w", cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteString("\x93NUMPY\x01\x00"); err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	if err := binary.Write(w, binary.LittleEndian, uint16(len(header))); err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	if _, err := w.WriteString(header); err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	if err := binary.Write(w, binary.LittleEndian, data); err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	return w.Flush()
}

var shapeRE = regexp.MustCompile(`'shape':\s*\((\d+),\s*(\d+)\)`)

// readNPYFloat32 reads a 2-D '<f4' .npy file written by writeNPY or NumPy.
func readNPYFloat32(path string) (data []float32, rows, cols int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("open npy: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, 0, 0, fmt.Errorf("read npy %s: %w", path, err)
	}
	if string(pre[:6]) != "\x93NUMPY" || pre[6] != 1 {
		return nil, 0, 0, fmt.Errorf("read npy %s: not a version 1 npy file", path)
	}
	hdr := make([]byte, binary.LittleEndian.Uint16(pre[8:]))
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, 0, 0, fmt.Errorf("read npy %s: %w", path, err)
	}
	if !strings.Contains(string(hdr), "'<f4'") || strings.Contains(string(hdr), "'fortran_order': True") {
		return nil, 0, 0, fmt.Errorf("read npy %s: want C-order <f4, header %q", path, hdr)
	}
	m := shapeRE.FindStringSubmatch(string(hdr))
	if m == nil {
		return nil, 0, 0, fmt.Errorf("read npy %s: no 2-D shape in %q", path, hdr)
	}
	rows, _ = strconv.Atoi(m[1])
	cols, _ = strconv.Atoi(m[2])
	if rows*cols > 1<<31 {
		return nil, 0, 0, fmt.Errorf("read npy %s: shape too large", path)
	}
	buf := make([]byte, 4*rows*cols)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, 0, 0, fmt.Errorf("read npy %s: %w", path, err)
	}
	data = make([]float32, rows*cols)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return data, rows, cols, nil
}

// readNPYInt32 reads a 2-D '<i4' .npy file written by writeNPY.
func readNPYInt32(path string) (data []int32, rows, cols int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read npy: %w", err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" || b[6] != 1 {
		return nil, 0, 0, fmt.Errorf("read npy %s: not a version 1 npy file", path)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:]))
	if len(b) < 10+hl {
		return nil, 0, 0, fmt.Errorf("read npy %s: truncated header", path)
	}
	hdr := string(b[10 : 10+hl])
	if !strings.Contains(hdr, "'<i4'") {
		return nil, 0, 0, fmt.Errorf("read npy %s: want <i4, header %q", path, hdr)
	}
	m := shapeRE.FindStringSubmatch(hdr)
	if m == nil {
		return nil, 0, 0, fmt.Errorf("read npy %s: no 2-D shape in %q", path, hdr)
	}
	rows, _ = strconv.Atoi(m[1])
	cols, _ = strconv.Atoi(m[2])
	body := b[10+hl:]
	if len(body) != 4*rows*cols {
		return nil, 0, 0, fmt.Errorf("read npy %s: %d data bytes for shape (%d, %d)", path, len(body), rows, cols)
	}
	data = make([]int32, rows*cols)
	for i := range data {
		data[i] = int32(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return data, rows, cols, nil
}
