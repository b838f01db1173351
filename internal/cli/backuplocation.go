package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
	"flotilla.dev/flotilla/internal/hub"
)

// newBackupLocationCmd is `flotilla backup-location`.
func newBackupLocationCmd() *cobra.Command {
	o := &hubOptions{}
	cmd := &cobra.Command{
		Use:     "backup-location",
		Aliases: []string{"backup-locations"},
		Short:   "Where backups are kept: the hub (default) or S3 buckets",
	}
	o.addFlags(cmd.PersistentFlags())

	var typ, endpoint, bucket, prefix, region, caFile, accessKey, secretKey, secretName, group, cluster string
	var pathStyle, org bool
	create := &cobra.Command{
		Use:   "create NAME --type s3 --bucket B ...",
		Short: "Add a backup location, optionally the default of the organization, a group or a cluster",
		Example: `  flotilla backup-location create archive --type s3 --endpoint https://s3.example.net --bucket backups \
      --path-style --access-key-id AKIA... --secret-access-key ... --cluster-group prod
  flotilla backup-location create old-velero --type s3 --bucket velero --region eu-west-1 --credentials-secret velero-creds`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			loc := &fv1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: args[0]}, Spec: fv1.BackupLocationSpec{Type: fv1.LocationType(typ)}}
			if org || group != "" || cluster != "" {
				loc.Spec.AssignedTo = &fv1.LocationAssignment{Organization: org, ClusterGroup: group, Cluster: cluster}
			}
			var sec *corev1.Secret
			if typ == string(fv1.LocationS3) {
				s3 := &fv1.S3Location{Endpoint: endpoint, Bucket: bucket, Prefix: prefix, Region: region, PathStyle: pathStyle, CredentialsSecret: secretName}
				if caFile != "" {
					ca, err := os.ReadFile(caFile)
					if err != nil {
						return fmt.Errorf("--ca-file: %v", err)
					}
					s3.CABundle = string(ca)
				}
				switch {
				case accessKey != "" && secretKey != "":
					if s3.CredentialsSecret == "" {
						s3.CredentialsSecret = "backup-location-" + args[0]
					}
					sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: hub.SystemNamespace, Name: s3.CredentialsSecret,
						Labels: map[string]string{labelLocationSecret: args[0]}},
						Data: map[string][]byte{fv1.S3AccessKeyID: []byte(accessKey), fv1.S3SecretAccessKey: []byte(secretKey)}}
				case accessKey != "" || secretKey != "":
					return fmt.Errorf("give both --access-key-id and --secret-access-key, or --credentials-secret")
				case secretName == "":
					return fmt.Errorf("an s3 location needs credentials: --access-key-id and --secret-access-key, or --credentials-secret NAME (a Secret in %s)", hub.SystemNamespace)
				}
				loc.Spec.S3 = s3
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				if sec != nil {
					if err := cl.Create(ctx, sec); apierrors.IsAlreadyExists(err) {
						if err := cl.Update(ctx, sec); err != nil {
							return err
						}
					} else if err != nil {
						return err
					}
				}
				if err := cl.Create(ctx, loc); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "backup location %s created\n", loc.Name)
				return nil
			})
		},
	}
	fs := create.Flags()
	fs.StringVar(&typ, "type", string(fv1.LocationS3), "hub or s3")
	fs.StringVar(&endpoint, "endpoint", "", "S3 endpoint URL or host:port (default: AWS)")
	fs.StringVar(&bucket, "bucket", "", "S3 bucket")
	fs.StringVar(&prefix, "prefix", "", "folder in the bucket")
	fs.StringVar(&region, "region", "", "S3 region")
	fs.BoolVar(&pathStyle, "path-style", false, "address the bucket in the path (most S3-compatible stores)")
	fs.StringVar(&caFile, "ca-file", "", "PEM file of the roots the endpoint's certificate chains to")
	fs.StringVar(&accessKey, "access-key-id", "", "S3 access key; stored in a Secret on the hub")
	fs.StringVar(&secretKey, "secret-access-key", "", "S3 secret key; stored in a Secret on the hub")
	fs.StringVar(&secretName, "credentials-secret", "", "an existing Secret in "+hub.SystemNamespace+" with accessKeyID and secretAccessKey")
	fs.BoolVar(&org, "organization", false, "make it the organization's default location")
	fs.StringVar(&group, "cluster-group", "", "make it this group's default location")
	fs.StringVar(&cluster, "cluster", "", "make it this cluster's default location")

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List backup locations",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			return o.run(func(ctx context.Context, cl client.Client) error {
				var l fv1.BackupLocationList
				if err := cl.List(ctx, &l); err != nil {
					return err
				}
				if format != "table" {
					return printObjects(c.OutOrStdout(), format, false, l.Items)
				}
				var rows [][]string
				for _, loc := range l.Items {
					where := "hub"
					if s := loc.Spec.S3; s != nil {
						where = "s3://" + s.Bucket + "/" + s.Prefix
					}
					rows = append(rows, []string{loc.Name, where, assignedTo(loc.Spec.AssignedTo), strconv.Itoa(int(loc.Status.Backups)), availability(loc.Status.Conditions)})
				}
				return table(c.OutOrStdout(), []string{"NAME", "WHERE", "DEFAULT FOR", "BACKUPS", "AVAILABLE"}, rows)
			})
		},
	}
	addOutputFlag(list, &format)

	var force bool
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a backup location that holds no backups (--force: leave its archives in the store)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return o.run(func(ctx context.Context, cl client.Client) error {
				loc := &fv1.BackupLocation{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}
				if force {
					patch := []byte(`{"metadata":{"annotations":{"` + fv1.AnnotationForceDelete + `":"true"}}}`)
					if err := cl.Patch(ctx, loc, client.RawPatch("application/merge-patch+json", patch)); err != nil {
						return err
					}
				}
				if err := cl.Get(ctx, client.ObjectKeyFromObject(loc), loc); err != nil {
					return err
				}
				if err := cl.Delete(ctx, loc); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "backup location %s deleted\n", args[0])
				// The credentials create made for it go with it; a Secret
				// the user named is the user's.
				if s := loc.Spec.S3; s != nil {
					var sec corev1.Secret
					err := cl.Get(ctx, client.ObjectKey{Namespace: hub.SystemNamespace, Name: s.CredentialsSecret}, &sec)
					if err == nil && sec.Labels[labelLocationSecret] == args[0] {
						return client.IgnoreNotFound(cl.Delete(ctx, &sec))
					}
				}
				return nil
			})
		},
	}
	del.Flags().BoolVar(&force, "force", false, "delete it although it holds backups; their archives stay in the store")
	cmd.AddCommand(create, list, del)
	return cmd
}

// labelLocationSecret marks a credentials Secret `backup-location create`
// made, with the location's name.
const labelLocationSecret = "flotilla.dev/backup-location"

func assignedTo(a *fv1.LocationAssignment) string {
	switch {
	case a == nil:
		return "-"
	case a.Organization:
		return "organization"
	case a.ClusterGroup != "":
		return "group " + a.ClusterGroup
	case a.Cluster != "":
		return "cluster " + a.Cluster
	}
	return "-"
}

func availability(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == fv1.ConditionAvailable {
			if c.Status == metav1.ConditionTrue {
				return "yes"
			}
			return "no: " + c.Message
		}
	}
	return "unknown"
}
