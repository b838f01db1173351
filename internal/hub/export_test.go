package hub

// KeepPublishing is keepPublishing, for hub_test.
var KeepPublishing = keepPublishing
