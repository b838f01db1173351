// Package access tests the hub's access point end to end: kubectl reaching
// member clusters through the hub, as users the hub authenticates, allowed
// by access policies, audited, and failing cleanly when parts are missing.
package access
