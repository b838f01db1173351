package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/policy"
)

// policyFlags are the flags of `policy create`.
type policyFlags struct {
	file, typ, mode, group, cluster, workspace, namespace string
	org                                                   bool
	selector                                              []string
	role, user, userGroup, serviceAccount                 string
	level, recipe, preset, cpu, memory                    string
	securityRules                                         []string
	capabilities                                          []string
	runtimeClass                                          string
	pods                                                  int64
	registries                                            []string
	exemptImages, exemptNamespaces                        []string
	blockLatest, requireDigest                            bool
	expression, message                                   string
	matchKinds, addLabels, addAnnotations                 []string
}

// spec builds the policy spec the flags describe; the hub validates it.
func (f *policyFlags) spec() (fv1.PolicySpec, error) {
	s := fv1.PolicySpec{Type: fv1.PolicyType(f.typ), Mode: fv1.PolicyMode(f.mode)}
	s.Scope = fv1.PolicyScope{Organization: f.org, ClusterGroup: f.group, Cluster: f.cluster, Workspace: f.workspace}
	if f.namespace != "" {
		c, n, ok := strings.Cut(f.namespace, "/")
		if !ok {
			return s, fmt.Errorf("--namespace takes CLUSTER/NAME, got %q", f.namespace)
		}
		s.Scope.Namespace = &fv1.NamespaceRef{Cluster: c, Name: n}
	}
	if len(f.selector) > 0 {
		labels, err := parseLabels(f.selector)
		if err != nil {
			return s, err
		}
		s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: labels}
	}
	if len(f.exemptImages) > 0 || len(f.exemptNamespaces) > 0 {
		s.Exemptions = &fv1.Exemptions{Images: f.exemptImages, Namespaces: f.exemptNamespaces}
	}
	switch s.Type {
	case fv1.PolicyAccess:
		sub := fv1.Subject{}
		switch {
		case f.user != "":
			sub.Kind, sub.Name = "User", f.user
		case f.userGroup != "":
			sub.Kind, sub.Name = "Group", f.userGroup
		case f.serviceAccount != "":
			ns, name, ok := strings.Cut(f.serviceAccount, "/")
			if !ok {
				return s, fmt.Errorf("--service-account takes NAMESPACE/NAME, got %q", f.serviceAccount)
			}
			sub.Kind, sub.Namespace, sub.Name = "ServiceAccount", ns, name
		default:
			return s, fmt.Errorf("an access policy needs --user, --group or --service-account")
		}
		s.Access = &fv1.AccessSpec{Role: f.role, Subjects: []fv1.Subject{sub}}
	case fv1.PolicySecurity:
		s.Security = &fv1.SecuritySpec{Level: f.level}
		for _, r := range f.securityRules {
			switch r {
			case "privileged":
				s.Security.DisallowPrivileged = true
			case "host-namespaces":
				s.Security.DisallowHostNamespaces = true
			case "run-as-root":
				s.Security.RequireRunAsNonRoot = true
			case "writable-root-filesystem":
				s.Security.RequireReadOnlyRootFilesystem = true
			default:
				return s, fmt.Errorf("unknown --disallow %q; use privileged, host-namespaces, run-as-root or writable-root-filesystem", r)
			}
		}
		if f.capabilities != nil {
			s.Security.Capabilities = &fv1.CapabilitiesRule{Allowed: f.capabilities}
		}
		s.Security.RequireRuntimeClass = f.runtimeClass
	case fv1.PolicyImageRegistry:
		s.ImageRegistry = &fv1.ImageRegistrySpec{AllowedRegistries: f.registries, BlockLatest: f.blockLatest, RequireDigest: f.requireDigest}
	case fv1.PolicyNetwork:
		s.Network = &fv1.NetworkSpec{Recipe: f.recipe}
	case fv1.PolicyQuota:
		q := &fv1.QuotaSpec{Preset: f.preset}
		for _, v := range []struct {
			in  string
			out **resource.Quantity
		}{{f.cpu, &q.CPU}, {f.memory, &q.Memory}} {
			if v.in != "" {
				parsed, err := resource.ParseQuantity(v.in)
				if err != nil {
					return s, fmt.Errorf("quota amount %q: %v", v.in, err)
				}
				*v.out = &parsed
			}
		}
		if f.pods > 0 {
			q.Pods = &f.pods
		}
		s.Quota = q
	case fv1.PolicyCustom:
		s.Custom = &fv1.CustomSpec{Expression: f.expression, Message: f.message, MatchKinds: f.matchKinds}
	case fv1.PolicyMutation:
		labels, err := parseLabels(f.addLabels)
		if err != nil {
			return s, err
		}
		annotations, err := parseLabels(f.addAnnotations)
		if err != nil {
			return s, err
		}
		s.Mutation = &fv1.MutationSpec{AddLabels: labels, AddAnnotations: annotations, MatchKinds: f.matchKinds}
	}
	return s, nil
}

func newPolicyCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{Use: "policy", Aliases: []string{"policies"}, Short: "Set guardrails once, enforced in every cluster below"}
	o.addFlags(cmd.PersistentFlags())

	f := &policyFlags{}
	var whatif bool
	var whatifWait time.Duration
	var whatifFormat string
	create := &cobra.Command{
		Use:   "create NAME --type TYPE SCOPE [type flags] [--dry-run] | create -f FILE",
		Short: "Create a policy, or with --dry-run see what it would reject without enforcing it",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkOutput(whatifFormat); err != nil {
				return err
			}
			if whatifFormat != "table" && !whatif {
				return fmt.Errorf("-o is for the report of --dry-run")
			}
			p := &fv1.Policy{}
			if f.file != "" {
				data, err := os.ReadFile(f.file)
				if err != nil {
					return err
				}
				if err := yaml.UnmarshalStrict(data, p); err != nil {
					return fmt.Errorf("%s is not a valid policy: %v", f.file, err)
				}
			} else {
				if len(args) != 1 {
					return fmt.Errorf("name the policy: flotilla policy create NAME --type TYPE ...")
				}
				spec, err := f.spec()
				if err != nil {
					return err
				}
				p.Name, p.Spec = args[0], spec
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				if whatif {
					return dryRun(ctx, cl, c.OutOrStdout(), c.ErrOrStderr(), p, whatifWait, whatifFormat)
				}
				if err := cl.Create(ctx, p); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "policy %s created\n", p.Name)
				return nil
			})
		},
	}
	fl := create.Flags()
	fl.StringVarP(&f.file, "filename", "f", "", "policy as YAML")
	fl.StringVar(&f.typ, "type", "", "access, security, image-registry, network, quota, custom or mutation")
	fl.StringVar(&f.mode, "mode", "enforce", "enforce or audit")
	fl.BoolVar(&f.org, "org", false, "scope: the whole organization")
	fl.StringVar(&f.group, "cluster-group", "", "scope: a cluster group")
	fl.StringVar(&f.cluster, "cluster", "", "scope: a cluster")
	fl.StringVar(&f.workspace, "workspace", "", "scope: a workspace")
	fl.StringVar(&f.namespace, "namespace", "", "scope: a namespace, as CLUSTER/NAME")
	fl.StringArrayVar(&f.selector, "namespace-selector", nil, "only namespaces with label k=v (repeatable)")
	fl.StringVar(&f.role, "role", "", "access: cluster-admin, admin, edit, view or a ClusterRole")
	fl.StringVar(&f.user, "user", "", "access: user")
	fl.StringVar(&f.userGroup, "group", "", "access: group")
	fl.StringVar(&f.serviceAccount, "service-account", "", "access: NAMESPACE/NAME")
	fl.StringVar(&f.level, "level", "", "security: baseline or restricted")
	fl.StringArrayVar(&f.securityRules, "disallow", nil, "security: privileged, host-namespaces, run-as-root or writable-root-filesystem (repeatable)")
	fl.StringSliceVar(&f.capabilities, "allow-capabilities", nil, "security: the only capabilities containers may add, comma-separated (empty: none)")
	fl.StringVar(&f.runtimeClass, "require-runtime-class", "", "security: pods must run in this RuntimeClass, such as sandboxed (under a kernel of their own); alone, it may be set on a workspace")
	fl.StringArrayVar(&f.registries, "allow-registry", nil, "image-registry: allowed registry (repeatable)")
	fl.BoolVar(&f.blockLatest, "block-latest", false, "image-registry: reject :latest and untagged images")
	fl.BoolVar(&f.requireDigest, "require-digest", false, "image-registry: require @sha256 digests")
	fl.StringArrayVar(&f.exemptImages, "exempt-image", nil, "security, image-registry: image left alone, exact or a prefix ending in * (repeatable)")
	fl.StringArrayVar(&f.exemptNamespaces, "exempt-namespace", nil, "security, image-registry: namespace left alone (repeatable)")
	fl.StringVar(&f.recipe, "recipe", "", "network: allow-all, allow-all-egress, deny-all, deny-all-egress, allow-same-namespace")
	fl.StringVar(&f.preset, "preset", "", "quota: small, medium or large")
	fl.StringVar(&f.cpu, "cpu", "", "quota: CPU requests")
	fl.StringVar(&f.memory, "memory", "", "quota: memory requests")
	fl.Int64Var(&f.pods, "pods", 0, "quota: pods")
	fl.StringVar(&f.expression, "expression", "", "custom: CEL that must hold")
	fl.StringVar(&f.message, "message", "", "custom: message when it does not")
	fl.StringArrayVar(&f.matchKinds, "match-kind", nil, "custom, mutation: kind to check or change, e.g. Pod or apps/Deployment (repeatable)")
	fl.StringArrayVar(&f.addLabels, "add-label", nil, "mutation: label k=v to add (repeatable)")
	fl.StringArrayVar(&f.addAnnotations, "add-annotation", nil, "mutation: annotation k=v to add (repeatable)")
	fl.BoolVar(&whatif, "dry-run", false, "enforce nothing: report which existing objects the policy would reject, cluster by cluster (security, image-registry, custom)")
	fl.DurationVar(&whatifWait, "wait", time.Minute, "with --dry-run: how long to wait for every cluster's findings")
	fl.StringVarP(&whatifFormat, "output", "o", "table", "with --dry-run: the report as table, yaml or json")

	var format string
	list := &cobra.Command{
		Use: "list", Short: "List policies", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				var l fv1.PolicyList
				if err := cl.List(ctx, &l); err != nil {
					return err
				}
				if format != "table" {
					for i := range l.Items {
						l.Items[i].SetGroupVersionKind(fv1.GroupVersion.WithKind("Policy"))
					}
					return printObjects(c.OutOrStdout(), format, false, l.Items)
				}
				rows := make([][]string, len(l.Items))
				for i, p := range l.Items {
					rows[i] = []string{p.Name, string(p.Spec.Type), scopeText(p.Spec.Scope), cell(string(p.Spec.Mode)),
						strconv.Itoa(int(p.Status.Clusters)), strconv.Itoa(int(p.Status.Noncompliant)), strconv.Itoa(int(p.Status.Violations)), age(p.CreationTimestamp)}
				}
				return table(c.OutOrStdout(), []string{"NAME", "TYPE", "SCOPE", "MODE", "CLUSTERS", "NONCOMPLIANT", "VIOLATIONS", "AGE"}, rows)
			})
		},
	}
	addOutputFlag(list, &format)

	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a policy (it is removed from every cluster)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				if err := cl.Delete(ctx, &fv1.Policy{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "policy %s deleted\n", args[0])
				return nil
			})
		},
	}

	var effCluster, effNamespace string
	effective := &cobra.Command{
		Use: "effective --cluster C [--namespace N]", Short: "The policies that apply, and where each comes from", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if effCluster == "" {
				return fmt.Errorf("which cluster? pass --cluster C")
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				var cluster fv1.Cluster
				if err := cl.Get(ctx, client.ObjectKey{Name: effCluster}, &cluster); err != nil {
					return err
				}
				var policies fv1.PolicyList
				if err := cl.List(ctx, &policies); err != nil {
					return err
				}
				var nss fv1.ClusterNamespaceList
				if err := cl.List(ctx, &nss, client.InNamespace(fv1.HubNamespace(effCluster))); err != nil {
					return err
				}
				var rows [][]string
				for _, n := range nss.Items {
					if effNamespace != "" && n.Name != effNamespace {
						continue
					}
					ns := policy.Namespace{Cluster: effCluster, Group: cluster.Spec.Group, Name: n.Name, Workspace: n.Spec.Workspace, Labels: n.Status.Labels}
					for _, e := range policy.ForNamespace(policies.Items, ns) {
						rows = append(rows, []string{n.Name, e.Policy.Name, string(e.Policy.Spec.Type), e.From.String(), string(e.Policy.Spec.Mode), exemptImagesText(e.Policy)})
					}
					for _, e := range policy.ExemptFor(policies.Items, ns) {
						rows = append(rows, []string{n.Name, e.Policy.Name, string(e.Policy.Spec.Type), e.From.String(), "exempt", "this namespace"})
					}
				}
				return table(c.OutOrStdout(), []string{"NAMESPACE", "POLICY", "TYPE", "FROM", "MODE", "EXEMPT"}, rows)
			})
		},
	}
	effective.Flags().StringVar(&effCluster, "cluster", "", "cluster")
	effective.Flags().StringVar(&effNamespace, "namespace", "", "only this namespace")

	cmd.AddCommand(create, list, newPolicyGetCmd(o), del, effective, newPolicyInsightsCmd(o), newPolicyPreviewCmd(o))
	return cmd
}

// exemptImagesText lists the images p exempts, for a table cell.
func exemptImagesText(p *fv1.Policy) string {
	if p.Spec.Exemptions == nil || len(p.Spec.Exemptions.Images) == 0 {
		return cell("")
	}
	return "images " + strings.Join(p.Spec.Exemptions.Images, ",")
}

func scopeText(s fv1.PolicyScope) string {
	switch {
	case s.Organization:
		return "organization"
	case s.ClusterGroup != "":
		return "cluster-group/" + s.ClusterGroup
	case s.Cluster != "":
		return "cluster/" + s.Cluster
	case s.Workspace != "":
		return "workspace/" + s.Workspace
	case s.Namespace != nil:
		return "namespace/" + s.Namespace.Cluster + "/" + s.Namespace.Name
	}
	return "-"
}
