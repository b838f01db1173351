package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// whatifInfix and the apiserver's 5 random characters follow the policy's
// name in the temporary policy a dry run creates.
const whatifInfix = "-whatif-"

// maxPolicyName: a policy's name is also a label value on every object it
// renders into a member cluster, so it must fit in 63 characters.
const maxPolicyName = 63

// whatifPrefix is the generateName of the temporary policy previewing name.
func whatifPrefix(name string) string {
	if max := maxPolicyName - len(whatifInfix) - 5; len(name) > max {
		name = strings.TrimRight(name[:max], "-.")
	}
	return name + whatifInfix
}

// dryRun shows what p would reject, enforcing nothing: it creates p in audit
// mode under a temporary name, waits for every cluster's findings, prints
// them as `policy preview` does, and deletes the temporary policy whatever
// happens (an error, Ctrl-C).
func dryRun(ctx context.Context, cl client.Client, out, errOut io.Writer, p *fv1.Policy, wait time.Duration, format string) (err error) {
	if err := checkPreviewable(p, true); err != nil {
		return err
	}
	name := p.Name
	tmp := p.DeepCopy()
	tmp.Name, tmp.GenerateName, tmp.ResourceVersion = "", whatifPrefix(name), ""
	tmp.Spec.Mode = fv1.ModeAudit
	start := time.Now()
	if err := cl.Create(ctx, tmp); err != nil {
		return err
	}
	defer func() {
		// A fresh context: the command's own is cancelled by Ctrl-C, and
		// the temporary policy must not outlive the command.
		dctx, cancel := context.WithTimeout(context.Background(), hubTimeout)
		defer cancel()
		if derr := cl.Delete(dctx, tmp); derr != nil && !apierrors.IsNotFound(derr) {
			fmt.Fprintf(errOut, "could not delete the temporary policy %s: %v; delete it with 'flotilla policy delete %s'\n", tmp.Name, derr, tmp.Name)
			if err == nil {
				err = derr
			}
			return
		}
		note := out
		if format != "table" {
			note = errOut // keep stdout parseable
		}
		fmt.Fprintf(note, "nothing was enforced: policy %s ran in audit mode as %s for %s, and is deleted\n", name, tmp.Name, time.Since(start).Round(100*time.Millisecond))
	}()
	rep, err := awaitPreview(ctx, cl, tmp.Name, wait)
	if err != nil {
		return err
	}
	rep.Policy, rep.DryRun = name, true
	// The members' messages name the policy that found the object: name
	// the one the user asked about, as its enforcement would.
	for i := range rep.Results {
		for j := range rep.Results[i].Objects {
			o := &rep.Results[i].Objects[j]
			o.Message = strings.ReplaceAll(o.Message, tmp.Name, name)
		}
	}
	return printPreview(out, format, rep, wait)
}
