package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
)

// fail wraps err from op on key with the location and, where the cause is
// known, what to do about it.
func (s *S3) fail(op, key string, err error) error {
	return fmt.Errorf("s3 location %q: %s %q: %w", s.name, op, key, s.explain(err))
}

// explain maps S3 and network errors to ones a user can act on; ErrNotFound
// for missing keys. Unknown errors pass through.
func (s *S3) explain(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "NoSuchKey", "NotFound":
			return ErrNotFound
		case "NoSuchBucket":
			return fmt.Errorf("bucket %q does not exist: create it or fix spec.s3.bucket", s.bucket)
		case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter: versitygw's 404 for the same
			return fmt.Errorf("access denied: the endpoint does not know the access key (%s): check the credentials Secret (spec.s3.credentialsSecret)", resp.Code)
		case "SignatureDoesNotMatch":
			return fmt.Errorf("access denied: the secret key does not match the access key (%s): check the credentials Secret (spec.s3.credentialsSecret)", resp.Code)
		case "AccessDenied", "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "AllAccessDisabled":
			return fmt.Errorf("access denied (%s: %s): check the credentials Secret (spec.s3.credentialsSecret) and that it may use bucket %q", resp.Code, resp.Message, s.bucket)
		case "AuthorizationHeaderMalformed", "InvalidRegion", "PermanentRedirect":
			return fmt.Errorf("wrong region (%s: %s): fix spec.s3.region", resp.Code, resp.Message)
		}
		if resp.StatusCode == 403 {
			return fmt.Errorf("access denied (%s): check the credentials Secret (spec.s3.credentialsSecret)", resp.Code)
		}
		return err
	}
	// HostnameError first: CertificateVerificationError wraps it too.
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var verifyErr *tls.CertificateVerificationError
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.As(err, &hostErr):
		return fmt.Errorf("endpoint %s: its TLS certificate is for another host (%w): fix spec.s3.endpoint", s.endpoint, err)
	case errors.As(err, &authErr), errors.As(err, &verifyErr):
		return fmt.Errorf("endpoint %s: its TLS certificate is not trusted (%w): put the CA that signed it in spec.s3.caBundle", s.endpoint, err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("endpoint %s answers plain HTTP: use an http:// endpoint", s.endpoint)
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return fmt.Errorf("endpoint %s unreachable: %w", s.endpoint, err)
	}
	return err
}
