package tracker

import (
	"io"
	"net/http"
	"time"

	"flotilla.dev/flotilla/internal/heartbeat"
)

// tunnel hands an agent's tunnel connection to the hub's access point, once
// the identity checks that streams pass have passed too. A tunnel the hub
// did not ask for is refused before the upgrade.
func (t *Tracker) tunnel(cluster string, w http.ResponseWriter) {
	if t.Tunnels == nil || !t.Tunnels.Asked(cluster) {
		http.Error(w, "this hub did not ask cluster "+cluster+"'s agent for a tunnel", http.StatusConflict)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+heartbeat.TunnelProtocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	conn.SetWriteDeadline(time.Time{})
	conn.SetReadDeadline(time.Time{})
	go t.Tunnels.Accept(cluster, conn)
}
