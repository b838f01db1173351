package policy

import (
	"fmt"
	"strings"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// containerLists are the pod fields holding containers. Ephemeral containers
// are added through the pods/ephemeralcontainers subresource, which the
// pod rules also match.
var containerLists = []string{"containers", "initContainers", "ephemeralContainers"}

// podCheck is a pod rule over each container (as c) of the pod under
// review. On UPDATE a container whose every field is as in oldObject is not
// judged again: a label, an annotation or a finalizer changed on a pod that
// predates the rule passes, while a changed image or a new ephemeral
// container is judged (Pod Security behaves the same way). Pod-level fields
// the check reads are named in podFields: a change to one of them has every
// container judged again.
type podCheck struct {
	// check is a CEL expression over c, true when c is allowed.
	check string
	// podFields are pod spec fields the check reads besides the container's.
	podFields []string
}

// expression renders the rule for a policy exempting images.
func (pc podCheck) expression(ex *fv1.Exemptions) string {
	skip := []string{}
	if e := exemptImage(ex); e != "" {
		skip = append(skip, e)
	}
	podSame := unchangedFields(pc.podFields)
	parts := make([]string, 0, len(containerLists))
	for _, list := range containerLists {
		same := fmt.Sprintf("oldObject.spec.%[1]s.exists(o, o == c)", list)
		if podSame != "" {
			same += " && " + podSame
		}
		judged := append(append([]string{}, skip...), fmt.Sprintf("(oldObject != null && has(oldObject.spec.%s) && %s)", list, same), pc.check)
		all := fmt.Sprintf("object.spec.%s.all(c, %s)", list, strings.Join(judged, " || "))
		if list != "containers" {
			all = fmt.Sprintf("(!has(object.spec.%s) || %s)", list, all)
		}
		parts = append(parts, all)
	}
	return strings.Join(parts, " && ")
}

// podLevel renders a rule over pod-level fields only: judged on CREATE, and
// on UPDATE only when one of fields changed.
func podLevel(check string, fields []string) string {
	return fmt.Sprintf("(oldObject != null && %s) || (%s)", unchangedFields(fields), check)
}

// unchangedFields is a CEL expression true when each pod spec field has
// the same value (or absence) in object and oldObject.
func unchangedFields(fields []string) string {
	var out []string
	for _, f := range fields {
		out = append(out, fmt.Sprintf("has(object.spec.%[1]s) == has(oldObject.spec.%[1]s) && (!has(object.spec.%[1]s) || object.spec.%[1]s == oldObject.spec.%[1]s)", f))
	}
	return strings.Join(out, " && ")
}

// exemptImage is a CEL expression true when c's image is exempt; empty
// when no image is.
func exemptImage(ex *fv1.Exemptions) string {
	if ex == nil {
		return ""
	}
	var any []string
	for _, img := range ex.Images {
		if prefix, ok := strings.CutSuffix(img, "*"); ok {
			any = append(any, fmt.Sprintf("c.image.startsWith(%q)", prefix))
			continue
		}
		any = append(any, fmt.Sprintf("c.image == %q", img))
	}
	if len(any) == 0 {
		return ""
	}
	return "(" + strings.Join(any, " || ") + ")"
}

// exemptionNote is what a rendered rule's message says of p's exemptions.
func exemptionNote(p *fv1.Policy) string {
	ex := p.Spec.Exemptions
	if ex == nil {
		return ""
	}
	var parts []string
	if len(ex.Images) > 0 {
		parts = append(parts, "images "+strings.Join(ex.Images, ", "))
	}
	if len(ex.Namespaces) > 0 {
		parts = append(parts, "namespaces "+strings.Join(ex.Namespaces, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (exempt: " + strings.Join(parts, "; ") + ")"
}
