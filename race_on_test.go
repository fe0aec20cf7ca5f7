//go:build race

package party

// raceOn reports that the tests run under the race detector, whose shadow
// memory makes memory figures meaningless.
const raceOn = true
