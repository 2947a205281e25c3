// Package helm holds the test that renders, lints and strictly decodes the
// Helm chart in tributary/ (chart_test.go). It is a module of its own so
// that Helm's dependency tree stays out of the services' modules.
package helm
