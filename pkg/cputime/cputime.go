// Package cputime reads the CPU time this process has used, for benchmarks
// and reports on shared machines, where wall-clock time includes waiting
// for a core.
package cputime
