package store

import (
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Config says where an S3 store lives and how to reach it.
type S3Config struct {
	// Name names the location in errors (e.g. the backup location's name);
	// "" uses the bucket.
	Name string
	// Endpoint is host:port or a URL; https:// is the default and http:// is
	// allowed (e.g. for tests). "" means AWS (s3.amazonaws.com).
	Endpoint string
	Bucket   string
	// Prefix, when not empty, puts every key under Prefix + "/" + key.
	Prefix string
	// Region is the bucket's region; "" asks the endpoint.
	Region string
	// PathStyle forces path-style requests (endpoint/bucket/key); otherwise
	// the client picks virtual-host style where the endpoint supports it.
	PathStyle bool
	// CABundle is PEM; extra roots for the endpoint's certificate.
	CABundle []byte
	// AccessKey and SecretKey are required; SessionToken is for temporary
	// credentials. Requests are signed with SigV4.
	AccessKey, SecretKey, SessionToken string
	// PartSize is the multipart part size; 0 means 8 MiB. Puts buffer one
	// part at a time, and a Put of unknown size can hold up to 10,000 parts
	// (about 80 GB at 8 MiB).
	PartSize uint64
}

const (
	defaultPartSize = 8 << 20
	minPartSize     = 5 << 20 // S3's minimum for all but the last part
	maxCopySize     = 5 << 30 // S3's limit for CopyObject and for one part
)

// S3 is a Store in an S3 bucket under an optional prefix.
type S3 struct {
	name     string
	endpoint string // scheme://host, for errors
	bucket   string
	prefix   string // "" or ending in "/"
	partSize uint64
	client   *minio.Client
	// probe fails fast: Check reports trouble instead of retrying through it.
	probe *minio.Client

	// copyLimit is the largest object Move copies in one request; larger
	// ones are copied in copyPartSize parts (0: the client's default).
	copyLimit    int64
	copyPartSize uint64
}

// NewS3 validates c and returns a store for it. It does not contact the
// endpoint; Check does.
func NewS3(c S3Config) (*S3, error) {
	s := &S3{name: c.Name, bucket: c.Bucket, partSize: c.PartSize, copyLimit: maxCopySize}
	if s.name == "" {
		s.name = c.Bucket
	}
	if c.Bucket == "" {
		return nil, s.configErr("no bucket given: set spec.s3.bucket")
	}
	if err := s3utils.CheckValidBucketName(c.Bucket); err != nil {
		return nil, s.configErr("bucket %q is not a valid bucket name (%v): fix spec.s3.bucket", c.Bucket, err)
	}
	host, secure, err := parseEndpoint(c.Endpoint)
	if err != nil {
		return nil, s.configErr("%v", err)
	}
	s.endpoint = "https://" + host
	if !secure {
		s.endpoint = "http://" + host
	}
	if s.prefix, err = cleanPrefix(c.Prefix); err != nil {
		return nil, s.configErr("%v", err)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, s.configErr("access key and secret key are both required: check the credentials Secret (spec.s3.credentialsSecret)")
	}
	if s.partSize == 0 {
		s.partSize = defaultPartSize
	}
	if s.partSize < minPartSize || s.partSize > maxCopySize {
		return nil, s.configErr("part size %d is outside S3's limits of 5 MiB to 5 GiB", s.partSize)
	}
	transport, err := newTransport(secure, c.CABundle)
	if err != nil {
		return nil, s.configErr("%v", err)
	}
	opts := func(retries int) *minio.Options {
		o := &minio.Options{
			Creds:      credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken),
			Secure:     secure,
			Transport:  transport,
			Region:     c.Region,
			MaxRetries: retries,
		}
		if c.PathStyle {
			o.BucketLookup = minio.BucketLookupPath
		}
		return o
	}
	// 0: minio's default of 10 tries with backoff, for long uploads.
	if s.client, err = minio.New(host, opts(0)); err != nil {
		return nil, s.configErr("%v", err)
	}
	if s.probe, err = minio.New(host, opts(1)); err != nil {
		return nil, s.configErr("%v", err)
	}
	return s, nil
}

// full maps a store key to its object name in the bucket.
func (s *S3) full(key string) string { return s.prefix + key }

// cleanPrefix trims slashes off p and checks what is left like a key.
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := checkPath(p, p); err != nil {
		return "", fmt.Errorf("prefix: %w: fix spec.s3.prefix", err)
	}
	return p + "/", nil
}

func (s *S3) configErr(format string, args ...any) error {
	return fmt.Errorf("s3 location %q: "+format, append([]any{s.name}, args...)...)
}
