// Package qdrantsuite runs the official Qdrant Go client's own integration
// suite (qdrant_test/ in github.com/qdrant/go-client, at the version this
// module pins) against the embedded store. The suite is used unchanged
// except for its container harness, image_test.go, which
// testdata/image_test.patch replaces with the address of a running server.
// The package has no code: see suite_test.go.
package qdrantsuite
