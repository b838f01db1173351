package v1alpha1

// Condition types shared by Flotilla's kinds.
const (
	// ConditionReady says whether the object is fully reconciled and usable.
	ConditionReady = "Ready"
)

// DefaultName is the name of the ClusterGroup and the Workspace that always
// exist and receive members that name no other.
const DefaultName = "default"
