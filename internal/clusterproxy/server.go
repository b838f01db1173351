package clusterproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"slices"
	"time"

	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// The headers the hub's apiserver names the user in, as set by its
// --requestheader-* flags.
const (
	UserHeader        = "X-Remote-User"
	UIDHeader         = "X-Remote-Uid"
	GroupHeader       = "X-Remote-Group"
	ExtraHeaderPrefix = "X-Remote-Extra-"
)

// maxHeaderBytes is the hub apiserver's own bound on a request's headers.
const maxHeaderBytes = 1 << 20

// Serve serves h on l until ctx ends. Every request must come from a client
// whose certificate the front-proxy CAs issued to one of allowedNames: the
// hub's apiserver, which alone may say who the user is.
func Serve(ctx context.Context, l net.Listener, h http.Handler, cert tls.Certificate, frontProxyCAs *x509.CertPool, allowedNames []string) error {
	srv := &http.Server{
		Handler:           headerAuth(h, frontProxyCAs, allowedNames),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    frontProxyCAs,
			MinVersion:   tls.VersionTLS12,
		},
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// headerAuth reads the user the front proxy names, with the apiserver
// library's request-header authenticator: the checks an aggregated API
// server makes, on the headers the hub's apiserver sends, which it removes.
func headerAuth(h http.Handler, cas *x509.CertPool, allowedNames []string) http.Handler {
	auth := headerrequest.NewDynamicVerifyOptionsSecure(
		func() (x509.VerifyOptions, bool) {
			return x509.VerifyOptions{Roots: cas, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true
		},
		headerrequest.StaticStringSlice(slices.Clone(allowedNames)),
		headerrequest.StaticStringSlice{UserHeader},
		headerrequest.StaticStringSlice{UIDHeader},
		headerrequest.StaticStringSlice{GroupHeader},
		headerrequest.StaticStringSlice{ExtraHeaderPrefix},
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := auth.AuthenticateRequest(r)
		if err != nil || !ok {
			writeStatus(w, http.StatusUnauthorized, "Unauthorized", "clusters are reached through the hub's apiserver, not this endpoint directly")
			return
		}
		h.ServeHTTP(w, r.WithContext(request.WithUser(r.Context(), resp.User)))
	})
}
