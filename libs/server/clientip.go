package server

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Clients tells where a request comes from behind trusted proxies, and the
// key under which per-client limits count it.
type Clients struct {
	trusted []netip.Prefix
	// v6Bits is the length of the network an IPv6 client is counted by: one
	// subscriber usually gets a whole /64 and can pick any address in it.
	v6Bits int
}

// NewClients reads TRUSTED_PROXIES and CLIENT_IPV6_PREFIX.
func NewClients(cfg Config) (*Clients, error) {
	if cfg.ClientIPv6Prefix < 1 || cfg.ClientIPv6Prefix > 128 {
		return nil, fmt.Errorf("CLIENT_IPV6_PREFIX %d: want 1 to 128", cfg.ClientIPv6Prefix)
	}
	cl := &Clients{v6Bits: cfg.ClientIPv6Prefix}
	for _, s := range cfg.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR", s)
		}
		cl.trusted = append(cl.trusted, p.Masked())
	}
	return cl, nil
}

// IP returns the address of the client that sent the request: the peer's
// address when the peer is not a trusted proxy, else the right-most
// X-Forwarded-For entry not added by a trusted proxy. Every X-Forwarded-For
// line counts, in order, as one list (RFC 9110 §5.3: a proxy may add its own
// line); an entry may carry a port (ip:port, [v6]:port). When the chain
// holds something that is not an address, the last trusted hop before it is
// the best that is known.
func (cl *Clients) IP(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	peer = peer.Unmap()
	if !cl.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = ip
		if !cl.isTrusted(ip) {
			break
		}
	}
	return client
}

// Key is what per-client limits count a request under: the client's IPv4
// address, or the network of CLIENT_IPV6_PREFIX bits its IPv6 address is in.
func (cl *Clients) Key(c *fiber.Ctx) string {
	ip := cl.IP(c)
	if ip.Is6() {
		if p, err := ip.Prefix(cl.v6Bits); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

func (cl *Clients) isTrusted(ip netip.Addr) bool {
	for _, p := range cl.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, with or without a
// port ("192.0.2.1", "192.0.2.1:8080", "2001:db8::1", "[2001:db8::1]:443",
// "[2001:db8::1]"). IPv4-mapped IPv6 addresses are their IPv4 address.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	return ip.WithZone("").Unmap(), true
}
