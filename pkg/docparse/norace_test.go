//go:build !race

package docparse

const raceEnabled = false
