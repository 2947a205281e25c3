//go:build race

package docparse

// raceEnabled: the race runtime needs far more memory than a child's
// small test limits allow.
const raceEnabled = true
