package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/fleet"
)

// newKubeconfigCmd is `flotilla kubeconfig`.
func newKubeconfigCmd() *cobra.Command {
	o := &hubOptions{}
	var all bool
	cmd := &cobra.Command{
		Use:   "kubeconfig [CLUSTER...]",
		Short: "Print a kubeconfig that reaches clusters through the hub, as you",
		Long: `Print a kubeconfig with one context per cluster, named after it, whose server is the
hub's access point for that cluster. It authenticates as the current user of
--hub-kubeconfig (whatever the credential: certificate, token, exec plugin, OIDC;
files it names are read into the output), so the hub decides who may reach which
cluster and each cluster's own RBAC decides what the request may do there.

  flotilla kubeconfig prod-eu lab > fleet.kubeconfig
  kubectl --kubeconfig fleet.kubeconfig --context lab get pods -A`,
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return fmt.Errorf("give cluster names or --all, not both (see '%s --help')", c.CommandPath())
			case !all && len(args) == 0:
				return fmt.Errorf("name the clusters to reach, or pass --all (see '%s --help')", c.CommandPath())
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				hub, err := clientcmd.LoadFromFile(o.kubeconfig)
				if err != nil {
					return fmt.Errorf("kubeconfig %s is not valid: %v", o.kubeconfig, err)
				}
				names, err := proxyTargets(ctx, cl, args, all, c.ErrOrStderr())
				if err != nil {
					return err
				}
				out, err := proxyKubeconfig(hub, names)
				if err != nil {
					return fmt.Errorf("kubeconfig %s: %v", o.kubeconfig, err)
				}
				return writeKubeconfig(c.OutOrStdout(), out)
			})
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&all, "all", false, "every cluster on the hub (for a user who may not list them, every cluster the user may reach)")
	return cmd
}

// proxyTargets returns the clusters to write, each once: every cluster on
// the hub with all, else names after checking that each exists. A user who
// may reach clusters but not read them gets the entries unchecked, with a
// warning, since the hub still decides at the first request.
func proxyTargets(ctx context.Context, c client.Client, names []string, all bool, warn io.Writer) ([]string, error) {
	if all {
		clusters, err := fleet.ListClusters(ctx, c)
		if apierrors.IsForbidden(err) {
			return reachable(ctx, c)
		}
		if err != nil {
			return nil, err
		}
		if len(clusters) == 0 {
			return nil, errors.New("the hub has no clusters; attach one with 'flotilla cluster attach'")
		}
		out := make([]string, len(clusters))
		for i, cl := range clusters {
			out[i] = cl.Name
		}
		sort.Strings(out)
		return out, nil
	}
	var out, unknown []string
	seen := map[string]bool{}
	checked := true
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if len(validation.IsDNS1123Label(n)) > 0 {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		out = append(out, n)
		if !checked {
			continue
		}
		err := c.Get(ctx, client.ObjectKey{Name: n}, &fv1.Cluster{})
		switch {
		case apierrors.IsNotFound(err):
			unknown = append(unknown, fmt.Sprintf("%q", n))
		case apierrors.IsForbidden(err):
			fmt.Fprintf(warn, "warning: you may not read clusters on the hub, so the names are not checked: %v\n", err)
			checked = false
		case err != nil:
			return nil, err
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown cluster %s; see 'flotilla cluster list'", strings.Join(unknown, ", "))
	}
	return out, nil
}

// reachable returns the clusters the hub's RBAC lets the user reach, for a
// user who may not list them: the names in the user's rules on
// clusters/proxy, as the hub's apiserver reports them.
func reachable(ctx context.Context, c client.Client) ([]string, error) {
	// Rules of cluster-wide bindings show in any namespace's review.
	review := &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: metav1.NamespaceDefault}}
	if err := c.Create(ctx, review); err != nil {
		return nil, fmt.Errorf("you may not list the hub's clusters, and asking the hub which ones you may reach failed: %w", err)
	}
	names, every := reachIn(review.Status.ResourceRules)
	switch {
	case every:
		return nil, errors.New("you may reach every cluster but not list them on the hub: name the clusters")
	case len(names) == 0:
		return nil, errors.New("you may reach no cluster through the hub; an access policy naming you grants reach")
	}
	return names, nil
}

// reachIn reads rules for the clusters they let a user reach (get on
// clusters/proxy); every is true when one allows any cluster.
func reachIn(rules []authorizationv1.ResourceRule) (names []string, every bool) {
	set := map[string]bool{}
	for _, r := range rules {
		if !matches(r.APIGroups, fv1.ProxyGroup) || !matches(r.Resources, fv1.ProxyResource+"/"+fv1.ProxySubresource) || !matches(r.Verbs, "get") {
			continue
		}
		if len(r.ResourceNames) == 0 {
			every = true
		}
		for _, n := range r.ResourceNames {
			set[n] = true
		}
	}
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, every
}

func matches(values []string, v string) bool {
	for _, x := range values {
		if x == v || x == "*" {
			return true
		}
	}
	return false
}

// hubEntry is the current context of a hub kubeconfig, with every file it
// names read in, so what is built from it works on any machine.
type hubEntry struct {
	clusterName string
	cluster     *clientcmdapi.Cluster
	userName    string
	user        *clientcmdapi.AuthInfo
}

// currentHub picks the current context's cluster and user out of hub,
// without changing hub.
func currentHub(hub *clientcmdapi.Config) (*hubEntry, error) {
	name := hub.CurrentContext
	kctx, ok := hub.Contexts[name]
	if name == "" || !ok {
		return nil, fmt.Errorf("it has no current context %q; set one with 'kubectl config use-context'", name)
	}
	cluster, ok := hub.Clusters[kctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("context %q names cluster %q, which it does not define", name, kctx.Cluster)
	}
	user, ok := hub.AuthInfos[kctx.AuthInfo]
	if !ok {
		return nil, fmt.Errorf("context %q names user %q, which it does not define", name, kctx.AuthInfo)
	}
	// Resolve and inline in a config of copies: the library does both in
	// place, relative to each entry's file of origin.
	one := clientcmdapi.NewConfig()
	one.Clusters[kctx.Cluster] = cluster.DeepCopy()
	one.AuthInfos[kctx.AuthInfo] = user.DeepCopy()
	if err := clientcmd.ResolveLocalPaths(one); err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(one); err != nil {
		return nil, fmt.Errorf("reading the files it names: %v", err)
	}
	e := &hubEntry{clusterName: kctx.Cluster, cluster: one.Clusters[kctx.Cluster], userName: kctx.AuthInfo, user: one.AuthInfos[kctx.AuthInfo]}
	// FlattenConfig leaves token files; a kubeconfig that works elsewhere
	// carries the token itself.
	if f := e.user.TokenFile; f != "" {
		tok, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading its token file: %v", err)
		}
		e.user.Token, e.user.TokenFile = strings.TrimSpace(string(tok)), ""
	}
	e.cluster.LocationOfOrigin, e.user.LocationOfOrigin = "", ""
	return e, nil
}

// proxyKubeconfig returns a kubeconfig that reaches each of clusters through
// the hub of hub's current context, as that context's user: one cluster
// entry and one context per cluster, named after it; the first is current.
func proxyKubeconfig(hub *clientcmdapi.Config, clusters []string) (*clientcmdapi.Config, error) {
	e, err := currentHub(hub)
	if err != nil {
		return nil, err
	}
	out := clientcmdapi.NewConfig()
	out.AuthInfos[e.userName] = e.user
	server := strings.TrimRight(e.cluster.Server, "/")
	for _, name := range clusters {
		cl := e.cluster.DeepCopy()
		cl.Server = server + fv1.ProxyPath(name)
		out.Clusters[name] = cl
		out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: e.userName}
	}
	if len(clusters) > 0 {
		out.CurrentContext = clusters[0]
	}
	return out, nil
}

// writeKubeconfig writes cfg as kubectl reads it.
func writeKubeconfig(w io.Writer, cfg *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
