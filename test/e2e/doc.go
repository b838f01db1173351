// Package e2e runs the flotilla binary end to end, as a user would.
package e2e
