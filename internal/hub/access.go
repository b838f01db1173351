package hub

import (
	"fmt"
	"os"
	"strconv"

	"flotilla.dev/flotilla/internal/datadir"
)

// apiserverAccessArgs are the apiserver flags of who may reach what: the
// audit log's and the authentication config's.
func apiserverAccessArgs(dir *datadir.Dir, c Config) ([]string, error) {
	size := c.AuditLogMaxSize
	if size == 0 {
		size = 100
	}
	args, err := auditArgs(dir, size)
	if err != nil {
		return nil, err
	}
	if c.AuthenticationConfig != "" {
		if _, err := os.Stat(c.AuthenticationConfig); err != nil {
			return nil, fmt.Errorf("--authentication-config: %v", err)
		}
		args = append(args, "--authentication-config="+c.AuthenticationConfig)
	}
	return args, nil
}

// auditArgs are the apiserver flags of the hub's audit log: every request
// through the access point, and every change to Flotilla's objects, by
// size-rotated files under logs/. The policy is a file in the data dir,
// written once: edit it to log more or less, and restart the hub.
func auditArgs(dir *datadir.Dir, maxSizeMB int) ([]string, error) {
	policy := dir.Join("audit-policy.yaml")
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte(defaultAuditPolicy), 0o644); err != nil {
			return nil, err
		}
	}
	return []string{
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + dir.Join("logs", "audit.log"),
		"--audit-log-format=json",
		"--audit-log-maxsize=" + strconv.Itoa(maxSizeMB),
		"--audit-log-maxbackup=10",
	}, nil
}

// defaultAuditPolicy logs who reached which cluster, and who changed what
// Flotilla governs; not agents' and controllers' own traffic, which at
// thousands of clusters would be most of the log.
const defaultAuditPolicy = `# The hub's audit policy (audit.k8s.io/v1). Written once by the hub; edit it
# and restart the hub to change what is logged. 'flotilla audit' reads the log.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
# Every request through the access point to a cluster.
- level: Metadata
  resources:
  - group: proxy.flotilla.dev
    resources: [clusters/proxy]
# Changes to what Flotilla governs, and to who may reach what.
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
  resources:
  - group: flotilla.dev
    resources: [policies, clustergroups, workspaces, clusters]
  - group: rbac.authorization.k8s.io
- level: None
`
