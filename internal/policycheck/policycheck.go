// Package policycheck refuses, in the hub's own apiserver, a Policy that a
// member cluster would refuse once rendered: CEL that does not compile, a
// NetworkPolicy or binding the Kubernetes API finds invalid. It renders the
// policy and runs Kubernetes' own validation on the result, so kubectl and
// CLI users get the same error, at create time rather than as a sync error
// in every cluster later. It also warns, without refusing, of a scope that
// names a cluster, group, workspace or namespace that does not exist.
package policycheck

import (
	"context"
	"fmt"
	"io"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/dynamic"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/apis/admissionregistration"
	_ "k8s.io/kubernetes/pkg/apis/admissionregistration/install"
	admissionvalidation "k8s.io/kubernetes/pkg/apis/admissionregistration/validation"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	networkingvalidation "k8s.io/kubernetes/pkg/apis/networking/validation"
	"k8s.io/kubernetes/pkg/apis/rbac"
	_ "k8s.io/kubernetes/pkg/apis/rbac/install"
	rbacvalidation "k8s.io/kubernetes/pkg/apis/rbac/validation"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// PluginName is the admission plugin's name in the hub's apiserver.
const PluginName = "FlotillaPolicy"

// Register adds the plugin to an apiserver's admission plugins.
func Register(plugins *admission.Plugins) {
	plugins.Register(PluginName, func(io.Reader) (admission.Interface, error) {
		return &plugin{Handler: admission.NewHandler(admission.Create, admission.Update)}, nil
	})
}

type plugin struct {
	*admission.Handler
	// dynamic reads the hub's own objects through the apiserver's loopback
	// connection, to warn of a scope that does not exist.
	dynamic dynamic.Interface
}

// SetDynamicClient is called by the apiserver's plugin initializer.
func (p *plugin) SetDynamicClient(c dynamic.Interface) { p.dynamic = c }

// ValidateInitialization checks that the apiserver gave the plugin a client.
func (p *plugin) ValidateInitialization() error {
	if p.dynamic == nil {
		return fmt.Errorf("%s admission plugin needs a dynamic client", PluginName)
	}
	return nil
}

var policies = schema.GroupResource{Group: fv1.GroupVersion.Group, Resource: "policies"}

// Validate refuses a Policy whose rendered objects are invalid, and warns
// of a scope that does not exist.
func (p *plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != policies || a.GetSubresource() != "" {
		return nil
	}
	u, ok := a.GetObject().(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	var pol fv1.Policy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pol); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if errs := Check(&pol); len(errs) > 0 {
		return apierrors.NewInvalid(fv1.GroupVersion.WithKind("Policy").GroupKind(), a.GetName(), errs)
	}
	if pol.DeletionTimestamp == nil {
		for _, w := range scopeWarnings(ctx, p.dynamic, &pol) {
			warning.AddWarning(ctx, "", w)
		}
	}
	return nil
}

// Check validates what pol renders to as a member cluster's apiserver would.
func Check(pol *fv1.Policy) field.ErrorList {
	if !complete(pol) {
		return nil // the CRD schema reports what is missing
	}
	at := field.NewPath("spec", typeField(pol.Spec.Type))
	var errs field.ErrorList
	for _, o := range policy.RenderOne(pol) {
		var found field.ErrorList
		var err error
		legacyscheme.Scheme.Default(o) // as the apiserver does before validating
		switch o := o.(type) {
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			if c := pol.Spec.Custom; c != nil {
				// The rule as written, too: wrapped to judge only what an
				// update changes, a non-boolean rule would compile.
				o = o.DeepCopy()
				o.Spec.Validations = append(o.Spec.Validations, admissionregistrationv1.Validation{Expression: c.Expression})
			}
			var in admissionregistration.ValidatingAdmissionPolicy
			if err = legacyscheme.Scheme.Convert(o, &in, nil); err == nil {
				found = admissionvalidation.ValidateValidatingAdmissionPolicy(&in)
			}
		case *admissionregistrationv1.MutatingAdmissionPolicy:
			var in admissionregistration.MutatingAdmissionPolicy
			if err = legacyscheme.Scheme.Convert(o, &in, nil); err == nil {
				found = admissionvalidation.ValidateMutatingAdmissionPolicy(&in)
			}
		case *networkingv1.NetworkPolicy:
			var in networking.NetworkPolicy
			if err = legacyscheme.Scheme.Convert(o, &in, nil); err == nil {
				found = networkingvalidation.ValidateNetworkPolicy(&in, networkingvalidation.NetworkPolicyValidationOptions{})
			}
		case *rbacv1.RoleBinding:
			var in rbac.RoleBinding
			if err = legacyscheme.Scheme.Convert(o, &in, nil); err == nil {
				found = rbacvalidation.ValidateRoleBinding(&in)
			}
		}
		if err != nil {
			errs = append(errs, field.InternalError(at, err))
		}
		for _, e := range found {
			errs = append(errs, field.Invalid(at, "", fmt.Sprintf("a member cluster would refuse the %s this policy becomes: %s: %s", o.GetObjectKind().GroupVersionKind().Kind, e.Field, e.ErrorBody())))
		}
	}
	if m := pol.Spec.Mutation; m != nil {
		// Pods given invalid labels would be refused at admission, in every cluster.
		errs = append(errs, metav1validation.ValidateLabels(m.AddLabels, at.Child("addLabels"))...)
		errs = append(errs, apivalidation.ValidateAnnotations(m.AddAnnotations, at.Child("addAnnotations"))...)
	}
	return errs
}

// complete reports whether the block of the policy's type is there.
func complete(p *fv1.Policy) bool {
	s := p.Spec
	switch s.Type {
	case fv1.PolicyAccess:
		return s.Access != nil
	case fv1.PolicySecurity:
		return s.Security != nil
	case fv1.PolicyImageRegistry:
		return s.ImageRegistry != nil
	case fv1.PolicyNetwork:
		return s.Network != nil && (s.Network.Recipe != "custom" || s.Network.Custom != nil)
	case fv1.PolicyQuota:
		return s.Quota != nil
	case fv1.PolicyCustom:
		return s.Custom != nil
	case fv1.PolicyMutation:
		return s.Mutation != nil
	}
	return false
}

func typeField(t fv1.PolicyType) string {
	if t == fv1.PolicyImageRegistry {
		return "imageRegistry"
	}
	return string(t)
}
