//go:build !linux

package main

import "testing"

// memTempDir is t.TempDir() where there is no /dev/shm.
func memTempDir(t testing.TB) string { return t.TempDir() }
