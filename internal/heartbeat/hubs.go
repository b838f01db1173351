package heartbeat

import (
	"encoding/json"
	"slices"
)

// HubInfoHubs is the hub-info key that lists every hub on the hub's
// storage, as JSON: hubs that share an external etcd each add themselves,
// and agents fail over between them.
const HubInfoHubs = "hubs"

// HubAddress is where agents reach one hub.
type HubAddress struct {
	// APIServer is the hub's apiserver, https://host:port.
	APIServer string `json:"apiServer"`
	// Stream is its agent endpoint's stream URL.
	Stream string `json:"stream"`
}

// Hubs reads the hubs listed in hub-info's data; a list it cannot read is
// none (an agent keeps the hub it has).
func Hubs(data map[string]string) []HubAddress {
	var hubs []HubAddress
	if json.Unmarshal([]byte(data[HubInfoHubs]), &hubs) != nil {
		return nil
	}
	return hubs
}

// AddHub lists h in hub-info's data, and says whether that changed it.
func AddHub(data map[string]string, h HubAddress) bool {
	hubs := Hubs(data)
	if slices.Contains(hubs, h) {
		return false
	}
	hubs = slices.DeleteFunc(hubs, func(o HubAddress) bool { return o.Stream == h.Stream })
	b, _ := json.Marshal(append(hubs, h))
	data[HubInfoHubs] = string(b)
	return true
}
