// Package analysis turns a Canary's metric checks into queries and judges their values.
//
// It holds no I/O: the controller sends the queries this package builds to a metric provider
// and hands the values back to Judge, so every verdict is a pure function of its inputs and
// can be replayed.
package analysis
