package hub

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// AgentWritesGuard is the admission policy that bounds what an agent may
// write to the ClusterNamespaces of its hub namespace.
const AgentWritesGuard = "flotilla-agent-writes"

// agentGuards hold agents, and only agents, to what their own work needs
// when they write ClusterNamespaces, so that one cluster's identity has no
// lever on anything beyond its namespace:
//
//   - A namespace an agent reports goes into the default workspace. Naming
//     another would put the namespace under that workspace's policies and in
//     its listings, and pin the workspace (one with namespaces cannot be
//     deleted) without its owners' say. Hub users place namespaces into
//     workspaces; the workspace label on a member namespace is the member's
//     word, not the hub's.
//   - The only finalizer an agent may add is Flotilla's own: a foreign one
//     would hold the cluster's hub namespace past a detach (even a forced
//     one, which removes Flotilla's finalizers only), and a later attach of
//     the name would fail.
//   - An agent creates with no metadata but the discovered label, and
//     changes neither labels nor annotations: nothing it needs, and each
//     could hold 256 KB of the hub's etcd per object.
//
// The status subresource is not matched: it is the agent's to write, within
// the schema's bounds.
func agentGuards() []client.Object {
	const (
		oldFinalizers = "(oldObject == null ? [] : oldObject.metadata.?finalizers.orValue([]))"
	)
	return []client.Object{
		&admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: AgentWritesGuard},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr.To(admissionregistrationv1.Fail),
				MatchConstraints: &admissionregistrationv1.MatchResources{
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
						RuleWithOperations: admissionregistrationv1.RuleWithOperations{
							Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
							Rule: admissionregistrationv1.Rule{
								APIGroups: []string{fv1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{"clusternamespaces"},
							},
						},
					}},
				},
				MatchConditions: []admissionregistrationv1.MatchCondition{{
					Name:       "agents-only",
					Expression: "request.userInfo.groups.exists(g, g == '" + fv1.AgentGroup + "')",
				}},
				Validations: []admissionregistrationv1.Validation{
					{
						Expression: "oldObject != null || object.spec.?workspace.orValue('" + fv1.DefaultName + "') == '" + fv1.DefaultName + "'",
						MessageExpression: "'an agent reports namespaces into the " + fv1.DefaultName + " workspace only, not ' + object.spec.workspace + " +
							"'; a hub user places a namespace into a workspace (flotilla namespace create ' + object.metadata.name + ' --cluster CLUSTER --workspace ' + object.spec.workspace + ')'",
						Reason: ptr.To(metav1.StatusReasonForbidden),
					},
					{
						Expression: "object.metadata.?finalizers.orValue([]).all(f, f == '" + fv1.NamespaceFinalizer + "' || f in " + oldFinalizers + ")",
						MessageExpression: "'an agent may set no finalizer but " + fv1.NamespaceFinalizer + ", not ' + " +
							"object.metadata.finalizers.filter(f, f != '" + fv1.NamespaceFinalizer + "' && !(f in " + oldFinalizers + ")).join(', ') + " +
							"': a finalizer of its own would hold the cluster\\'s hub namespace past a detach'",
						Reason: ptr.To(metav1.StatusReasonForbidden),
					},
					{
						Expression: "oldObject == null ? " +
							"(object.metadata.?labels.orValue({}).all(k, k == '" + fv1.LabelDiscovered + "') && size(object.metadata.?annotations.orValue({})) == 0) : " +
							"(object.metadata.?labels.orValue({}) == oldObject.metadata.?labels.orValue({}) && object.metadata.?annotations.orValue({}) == oldObject.metadata.?annotations.orValue({}))",
						Message: "an agent may set no label but " + fv1.LabelDiscovered + " and no annotation on a ClusterNamespace, and change neither; the namespace's own labels go in status.labels",
						Reason:  ptr.To(metav1.StatusReasonForbidden),
					},
				},
			},
		},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: AgentWritesGuard},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        AgentWritesGuard,
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			},
		},
	}
}
