//go:build !unix

package ingest

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK; on this platform the lock is not exclusive.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}
