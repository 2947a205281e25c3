package main

import (
	"context"
	"errors"
	"io"
)

// runVectorDB is a placeholder until its issue lands.
func runVectorDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("vectordb: not implemented yet")
}
