package store

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
)

// parseEndpoint turns an endpoint as users write it (host:port, or a URL
// with no path) into minio's host and TLS flag.
func parseEndpoint(ep string) (host string, secure bool, err error) {
	if ep == "" {
		return "s3.amazonaws.com", true, nil
	}
	raw := ep
	if !strings.Contains(ep, "://") {
		raw = "https://" + ep
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q is neither host:port nor a URL: fix spec.s3.endpoint", ep)
	}
	switch u.Scheme {
	case "https":
		secure = true
	case "http":
	default:
		return "", false, fmt.Errorf("endpoint %q: scheme %q is not supported: use https:// or http://", ep, u.Scheme)
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("endpoint %q has no host: fix spec.s3.endpoint", ep)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("endpoint %q must be only scheme://host[:port]: put the bucket in spec.s3.bucket and any path in spec.s3.prefix", ep)
	}
	return u.Host, secure, nil
}

// newTransport returns nil (minio's default) unless caBundle adds roots to
// an https endpoint's.
func newTransport(secure bool, caBundle []byte) (http.RoundTripper, error) {
	if len(caBundle) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caBundle) {
		return nil, errors.New("the CA bundle holds no PEM certificate: fix spec.s3.caBundle")
	}
	if !secure {
		return nil, nil
	}
	t, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig.RootCAs = pool
	return t, nil
}
