//go:build !remote

package app

// connectAdapters are the modules' Connect adapters: none in a build
// without -tags remote, which runs every module in one process and holds
// no RPC code.
func connectAdapters() adapters { return adapters{} }
