package vectordb

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// Dense rows live on the heap, or, for a vector created with on_disk, in a
// memory-mapped file under <data-dir>/vectors: the kernel then keeps in RAM
// only the pages searches touch (the rescoring of a quantized space's
// candidates, exact scans) and can drop them under memory pressure. The
// files are caches: the WAL and snapshots hold the vectors, so the files
// are deleted at start and rebuilt by recovery.

// rowFileName returns a fresh file name for the rows of a collection's
// vector. Names are never reused, so a collection deleted and created again
// never shares a file with its predecessor.
func (a annConfig) rowFileName(collection, vector string) string {
	n := a.fileSeq.Add(1)
	return filepath.Join(a.vectorDir, fmt.Sprintf("%s-%d-%s.f32", collection, n, hex.EncodeToString([]byte(vector))))
}

// resetVectorDir empties (creating) the directory of row files.
func resetVectorDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove vector files: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create vector directory: %w", err)
	}
	return nil
}

// appendRow adds a zero row at the end of the space. Caller holds the
// collection's write lock: growing a mapping replaces it, so no reader may
// hold a row meanwhile (rows are never kept past the lock).
func (d *denseSpace) appendRow() {
	if d.file == "" {
		d.data = append(d.data, make([]float32, d.dim)...)
		return
	}
	n := len(d.data) + d.dim
	if d.rows == nil || n > cap(d.data) {
		rows, data, err := growRowFile(d.rows, d.file, len(d.data), max(2*cap(d.data), n, 1024*d.dim))
		if err != nil {
			// Without a file the rows stay correct on the heap.
			d.file, d.rows = "", nil
			d.data = append(append(make([]float32, 0, n), d.data...), make([]float32, d.dim)...)
			return
		}
		d.rows, d.data = rows, data
	}
	d.data = d.data[:n]
	clear(d.data[n-d.dim:])
}

// release deletes the space's row file; the mapping itself is unmapped when
// the space becomes unreachable (readers that raced the deletion may still
// hold the collection).
func (d *denseSpace) release() {
	if d.rows != nil {
		d.rows.close()
	}
}
