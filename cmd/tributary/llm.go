package main

import (
	"context"
	"errors"
	"io"
)

// runLLM is a placeholder until its issue lands.
func runLLM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("llm: not implemented yet")
}
