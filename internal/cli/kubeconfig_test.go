package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// hubConfig is a kubeconfig as clientcmd loads it from dir/hub.kubeconfig,
// with user as its current context's user.
func hubConfig(dir string, user *clientcmdapi.AuthInfo) *clientcmdapi.Config {
	origin := filepath.Join(dir, "hub.kubeconfig")
	user.LocationOfOrigin = origin
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["hub"] = &clientcmdapi.Cluster{LocationOfOrigin: origin, Server: "https://127.0.0.1:6443/", CertificateAuthority: "ca.crt", TLSServerName: "hub.example"}
	cfg.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://elsewhere"}
	cfg.AuthInfos["me"] = user
	cfg.AuthInfos["someone"] = &clientcmdapi.AuthInfo{Token: "not mine"}
	cfg.Contexts["hub"] = &clientcmdapi.Context{Cluster: "hub", AuthInfo: "me", Namespace: "flotilla-system"}
	cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "someone"}
	cfg.CurrentContext = "hub"
	return cfg
}

func TestProxyKubeconfig(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"ca.crt": "CA", "me.crt": "CERT", "me.key": "KEY", "token": "TOKEN\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exec := &clientcmdapi.ExecConfig{Command: "./bin/login", Args: []string{"--hub"}, APIVersion: "client.authentication.k8s.io/v1"}
	oidc := &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"idp-issuer-url": "https://idp.example", "client-id": "flotilla"}}
	cases := []struct {
		name string
		user *clientcmdapi.AuthInfo
		want clientcmdapi.AuthInfo
	}{
		{"certificate files", &clientcmdapi.AuthInfo{ClientCertificate: "me.crt", ClientKey: filepath.Join(dir, "me.key")},
			clientcmdapi.AuthInfo{ClientCertificateData: []byte("CERT"), ClientKeyData: []byte("KEY")}},
		{"certificate data", &clientcmdapi.AuthInfo{ClientCertificateData: []byte("C"), ClientKeyData: []byte("K")},
			clientcmdapi.AuthInfo{ClientCertificateData: []byte("C"), ClientKeyData: []byte("K")}},
		{"token file", &clientcmdapi.AuthInfo{TokenFile: "token"}, clientcmdapi.AuthInfo{Token: "TOKEN"}},
		{"token and impersonation", &clientcmdapi.AuthInfo{Token: "T", Impersonate: "bob"}, clientcmdapi.AuthInfo{Token: "T", Impersonate: "bob"}},
		{"exec plugin beside the kubeconfig", &clientcmdapi.AuthInfo{Exec: exec},
			clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: filepath.Join(dir, "bin/login"), Args: []string{"--hub"}, APIVersion: "client.authentication.k8s.io/v1"}}},
		{"oidc", &clientcmdapi.AuthInfo{AuthProvider: oidc}, clientcmdapi.AuthInfo{AuthProvider: oidc}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := hubConfig(dir, tc.user)
			before := hub.DeepCopy()
			out, err := proxyKubeconfig(hub, []string{"prod-eu", "lab"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(hub, before) {
				t.Error("the hub's kubeconfig was changed")
			}
			if out.CurrentContext != "prod-eu" || len(out.Contexts) != 2 || len(out.Clusters) != 2 || len(out.AuthInfos) != 1 {
				t.Fatalf("want 2 contexts and clusters, 1 user, prod-eu current; got %+v", out)
			}
			for _, name := range []string{"prod-eu", "lab"} {
				cl := out.Clusters[name]
				if want := "https://127.0.0.1:6443" + fv1.ProxyPath(name); cl == nil || cl.Server != want {
					t.Fatalf("cluster %s: %+v, want server %s", name, cl, want)
				}
				if string(cl.CertificateAuthorityData) != "CA" || cl.CertificateAuthority != "" || cl.TLSServerName != "hub.example" {
					t.Errorf("cluster %s: CA %q (file %q), server name %q; want the hub's CA inline and its server name", name, cl.CertificateAuthorityData, cl.CertificateAuthority, cl.TLSServerName)
				}
				if c := out.Contexts[name]; c == nil || c.Cluster != name || c.AuthInfo != "me" || c.Namespace != "" {
					t.Errorf("context %s: %+v", name, c)
				}
			}
			if got := out.AuthInfos["me"]; got == nil || !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("user: got %+v\nwant %+v", got, tc.want)
			}
			// What kubectl reads back is what was built.
			data, err := clientcmd.Write(*out)
			if err != nil {
				t.Fatal(err)
			}
			back, err := clientcmd.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			if back.Clusters["lab"].Server != out.Clusters["lab"].Server || back.CurrentContext != "prod-eu" {
				t.Errorf("written kubeconfig reads back as %+v", back)
			}
		})
	}
}

func TestProxyKubeconfigErrors(t *testing.T) {
	dir := t.TempDir()
	missing := hubConfig(dir, &clientcmdapi.AuthInfo{ClientCertificate: "absent.crt"})
	noContext := hubConfig(dir, &clientcmdapi.AuthInfo{})
	noContext.CurrentContext = ""
	noUser := hubConfig(dir, &clientcmdapi.AuthInfo{})
	delete(noUser.AuthInfos, "me")
	cases := []struct {
		name string
		hub  *clientcmdapi.Config
		want string
	}{
		{"a file it names is missing", missing, "absent.crt"},
		{"no current context", noContext, "use-context"},
		{"user not defined", noUser, `user "me"`},
	}
	for _, tc := range cases {
		if _, err := proxyKubeconfig(tc.hub, []string{"lab"}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}
