package main

import (
	"context"
	"errors"
	"io"
)

// runBroker is a placeholder until its issue lands.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("broker: not implemented yet")
}
