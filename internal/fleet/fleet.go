// Package fleet reads and changes the fleet as the hub records it: clusters,
// cluster groups and workspaces. It works over any controller-runtime client
// of the hub and returns errors that say what to do next, so the CLI and tests
// share one behaviour.
package fleet

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// hintError carries a message for people while keeping the apiserver's error
// reachable through errors.As, so apierrors.IsNotFound and friends still work.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// explain rewrites the apiserver errors people hit by naming the object
// (kind as people say it, e.g. "cluster group") and the command that helps;
// others are returned as they are.
func explain(err error, what, name, listCmd string) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return &hintError{fmt.Sprintf("%s %q not found; see '%s'", what, name, listCmd), err}
	case apierrors.IsAlreadyExists(err):
		return &hintError{fmt.Sprintf("%s %q already exists", what, name), err}
	}
	return err
}

// Typed objects read through a client come back without apiVersion and kind;
// callers print them for kubectl, which needs both.
func setKind(o interface {
	SetGroupVersionKind(schema.GroupVersionKind)
}, kind string) {
	o.SetGroupVersionKind(fv1.GroupVersion.WithKind(kind))
}
