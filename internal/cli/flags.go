package cli

import (
	"k8s.io/apimachinery/pkg/api/resource"
)

// quantityFlag is a pflag.Value for a resource quantity such as 4 or 16Gi.
type quantityFlag struct{ q *resource.Quantity }

func (f quantityFlag) String() string {
	if f.q == nil {
		return ""
	}
	return f.q.String()
}

func (f quantityFlag) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return err
	}
	*f.q = q
	return nil
}

func (quantityFlag) Type() string { return "quantity" }
