package main

import (
	"context"
	"errors"
	"io"
)

// runInference is a placeholder until its issue lands.
func runInference(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("inference: not implemented yet")
}
