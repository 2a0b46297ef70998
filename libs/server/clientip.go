package server

import (
	"fmt"
	"net"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ClientIP returns the address of the client that sent the request: the
// right-most X-Forwarded-For entry not added by a trusted proxy, or the
// peer's address when the peer is not a trusted proxy.
func ClientIP(c *fiber.Ctx, trusted []*net.IPNet) string {
	peer := c.Context().RemoteIP()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(strings.TrimSpace(hops[i]))
		if ip == nil {
			break
		}
		if !isTrusted(ip, trusted) || i == 0 {
			return ip.String()
		}
	}
	return peer.String()
}

func isTrusted(ip net.IP, trusted []*net.IPNet) bool {
	for _, n := range trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseCIDRs parses TRUSTED_PROXIES.
func ParseCIDRs(list []string) ([]*net.IPNet, error) {
	nets := make([]*net.IPNet, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR", s)
		}
		nets = append(nets, n)
	}
	return nets, nil
}
