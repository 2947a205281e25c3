// Package conformance holds the Qdrant conformance suite: tests that drive
// the official Qdrant Go client against a server address. By default they
// start the embedded store in process on a random port; with QDRANT_ADDR
// (host:port of a gRPC API) set they run against that server instead, so any
// drift between the embedded store and Qdrant shows.
package conformance
