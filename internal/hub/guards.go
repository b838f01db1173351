package hub

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// guards are admission policies the hub's apiserver enforces for everyone,
// kubectl users included: the default group and workspace always exist, and
// a group or workspace with members cannot be deleted. Membership comes from
// the counts the hub's controllers keep in status.
func guards() []client.Object {
	type guard struct {
		name, resource, count, noun, action string
		// escape, if set, lets a delete through whatever the count.
		escape string
	}
	var objs []client.Object
	for _, g := range []guard{
		{"flotilla-clustergroup-delete", "clustergroups", "clusters", "cluster group", "move or detach them first", ""},
		{"flotilla-workspace-delete", "workspaces", "namespaces", "workspace", "delete them first", ""},
		{"flotilla-backuplocation-delete", "backuplocations", "backups", "backup location",
			"delete them first, or annotate it " + fv1.AnnotationForceDelete + "=true (`flotilla backup-location delete NAME --force`) to delete it and leave their archives in the store",
			"oldObject.metadata.?annotations[?'" + fv1.AnnotationForceDelete + "'].orValue('') == 'true' || "},
	} {
		fail := admissionregistrationv1.Deny
		objs = append(objs,
			&admissionregistrationv1.ValidatingAdmissionPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: g.name},
				Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
					FailurePolicy: ptr.To(admissionregistrationv1.Fail),
					MatchConstraints: &admissionregistrationv1.MatchResources{
						ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
							RuleWithOperations: admissionregistrationv1.RuleWithOperations{
								Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
								Rule: admissionregistrationv1.Rule{
									APIGroups: []string{fv1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{g.resource},
								},
							},
						}},
					},
					Validations: []admissionregistrationv1.Validation{
						{
							Expression:        "oldObject.metadata.name != 'default'",
							MessageExpression: "'the default " + g.noun + " always exists'",
						},
						{
							Expression: g.escape + "!has(oldObject.status) || !has(oldObject.status." + g.count + ") || oldObject.status." + g.count + " == 0",
							MessageExpression: "'" + g.noun + " ' + oldObject.metadata.name + ' still has ' + string(oldObject.status." + g.count +
								") + ' " + g.count + "; " + g.action + "'",
						},
					},
				},
			},
			&admissionregistrationv1.ValidatingAdmissionPolicyBinding{
				ObjectMeta: metav1.ObjectMeta{Name: g.name},
				Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
					PolicyName:        g.name,
					ValidationActions: []admissionregistrationv1.ValidationAction{fail},
				},
			},
		)
	}
	return objs
}
