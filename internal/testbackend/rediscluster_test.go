package testbackend

import "testing"

// TestFreePortsBelowEphemeralRange: the ports picked for test Redis
// servers, and their cluster bus ports, lie below the ephemeral range, so
// that no outgoing connection can take one before the server binds it.
func TestFreePortsBelowEphemeralRange(t *testing.T) {
	low := EphemeralPortLow()
	for range 30 {
		ports := freePorts(t, 6)
		for i, p := range ports {
			if p != ports[0]+i {
				t.Fatalf("ports %v are not consecutive", ports)
			}
			if p < 1024 || p+10000 >= low {
				t.Fatalf("port %d (bus port %d) of %v: want both in [1024, %d), below the ephemeral range", p, p+10000, ports, low)
			}
			if !portFree(p) || !portFree(p+10000) {
				t.Fatalf("port %d or its bus port %d cannot be bound", p, p+10000)
			}
		}
	}
}
