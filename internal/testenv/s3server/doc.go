// Package s3server starts a real S3 server for tests: versitygw with its
// POSIX backend, on 127.0.0.1, with a fresh data directory under the test's
// TempDir, static root credentials and SigV4.
//
// versitygw runs as a child process, not in the test process: its POSIX
// backend chdirs the whole process into its data directory and resolves
// buckets relative to the working directory, which would change the cwd of
// every test in the binary and allow one server per process. The binary is
// built once per versitygw version (the one go.mod pins as a tool) into the
// user cache directory; the first build takes a few minutes. A server is
// stopped by PID when its test ends, and dies with the test process if that
// is killed.
//
// Only tests may import this package.
package s3server
