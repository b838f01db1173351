package registration

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestSpendBringsExpiryForward(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, expiration, want string
	}{
		{"an hour left", "2026-01-02T04:04:05Z", "2026-01-02T03:09:05Z"},
		{"a minute left", "2026-01-02T03:05:05Z", "2026-01-02T03:05:05Z"},
		{"unreadable", "soon", "2026-01-02T03:09:05Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Secret{Data: map[string][]byte{"expiration": []byte(tc.expiration)}}
			Spend(s, "csr-uid", now)
			if got := string(s.Data["expiration"]); got != tc.want {
				t.Errorf("expiration %s, want %s", got, tc.want)
			}
			if s.Labels[LabelUsed] != "true" || s.Annotations[AnnotationUsedBy] != "csr-uid" {
				t.Errorf("not marked used by csr-uid: %v %v", s.Labels, s.Annotations)
			}
		})
	}
}
