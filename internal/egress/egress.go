// Package egress is the dial-time address policy for participant-supplied
// URLs: a net.Dialer.Control hook that checks the IP address actually dialed
// (after DNS resolution, so a name that rebinds to an internal address is
// caught), and an http.Client built on it with connect, first-byte and total
// timeouts. The inference client, the kinds that call participants' models
// and the validator node all dial through it.
//
// The package imports only the standard library.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// MaxRedirects is how many redirects a client from NewSafeHTTPClient follows
// before it gives up.
const MaxRedirects = 5

// EndpointPolicy decides which addresses outbound connections to
// participant-supplied URLs may reach. By default it refuses every address a
// participant could use to reach into the operator's network: unspecified,
// loopback, private (RFC 1918 and IPv6 unique local), link-local (including
// the cloud metadata service at 169.254.169.254), multicast, shared CGNAT
// (100.64.0.0/10) and reserved IPv4 ranges. Prefixes in Allow are reachable
// even when they fall in a refused range. The zero value is the strict policy.
type EndpointPolicy struct {
	// Allow lists prefixes the operator explicitly allows, e.g. 127.0.0.0/8
	// for a demo whose model servers run on the same machine.
	Allow []netip.Prefix
	// Resolver resolves host names at dial time; nil uses the system
	// resolver. Tests inject one that answers from a fake DNS server.
	Resolver *net.Resolver
}

// ParseAllowList parses a comma-separated list of CIDR prefixes or single
// addresses ("127.0.0.0/8,10.0.0.0/8,::1") into a policy allowing them.
// Spaces around entries are ignored and an empty string allows nothing.
func ParseAllowList(s string) (EndpointPolicy, error) {
	var p EndpointPolicy
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			pfx, err := netip.ParsePrefix(f)
			if err != nil {
				return EndpointPolicy{}, fmt.Errorf("allowed endpoints: %q is not a CIDR prefix like 127.0.0.0/8: %w", f, err)
			}
			p.Allow = append(p.Allow, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return EndpointPolicy{}, fmt.Errorf("allowed endpoints: %q is neither a CIDR prefix nor an IP address (want e.g. 127.0.0.0/8): %w", f, err)
		}
		a = a.Unmap().WithZone("")
		p.Allow = append(p.Allow, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// String returns the allow list in the form ParseAllowList accepts.
func (p EndpointPolicy) String() string {
	s := make([]string, len(p.Allow))
	for i, pfx := range p.Allow {
		s[i] = pfx.String()
	}
	return strings.Join(s, ",")
}

// RefusedError is returned when a connection would reach an address the
// policy refuses. It is permanent: retrying reaches the same address.
type RefusedError struct {
	// Addr is the refused address.
	Addr netip.Addr
	// Reason names the refused range, e.g. "a loopback address".
	Reason string
}

// Error implements error.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("egress policy refused: %s is %s; the operator can allow it with --allow-endpoints", e.Addr, e.Reason)
}

// IsRefused reports whether err (or an error it wraps) is a *RefusedError.
func IsRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}

// refusedRange is one range the strict policy refuses.
type refusedRange struct {
	prefix netip.Prefix
	reason string
}

// refusedRanges are checked in order, so the metadata address is named
// before the link-local range containing it.
var refusedRanges = func() []refusedRange {
	list := []struct{ cidr, reason string }{
		{"169.254.169.254/32", "the cloud metadata service (a link-local address)"},
		{"fd00:ec2::254/128", "the cloud metadata service (an IPv6 unique local address)"},
		{"0.0.0.0/8", `a "this network" address`},
		{"127.0.0.0/8", "a loopback address"},
		{"10.0.0.0/8", "a private address (RFC 1918)"},
		{"172.16.0.0/12", "a private address (RFC 1918)"},
		{"192.168.0.0/16", "a private address (RFC 1918)"},
		{"100.64.0.0/10", "a shared (CGNAT) address"},
		{"169.254.0.0/16", "a link-local address"},
		{"192.0.0.0/24", "an IETF protocol assignment address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "an unspecified address"},
		{"::1/128", "a loopback address"},
		{"fc00::/7", "a private address (IPv6 unique local)"},
		{"fe80::/10", "a link-local address"},
		{"ff00::/8", "a multicast address"},
	}
	out := make([]refusedRange, len(list))
	for i, r := range list {
		out[i] = refusedRange{netip.MustParsePrefix(r.cidr), r.reason}
	}
	return out
}()

// nat64 is the well-known NAT64 prefix; its last 32 bits are an IPv4 address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Check returns nil if a connection to addr is allowed, or a *RefusedError
// saying why not. IPv4-mapped and NAT64 IPv6 addresses are checked as the
// IPv4 address they carry.
func (p EndpointPolicy) Check(addr netip.Addr) error {
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return &RefusedError{Addr: addr, Reason: "not a valid IP address"}
	}
	for _, pfx := range p.Allow {
		if pfx.Contains(addr) {
			return nil
		}
	}
	if nat64.Contains(addr) {
		b := addr.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if err := p.Check(v4); err != nil {
			return &RefusedError{Addr: addr, Reason: "a NAT64 address of " + v4.String() + ", " + err.(*RefusedError).Reason}
		}
		return nil
	}
	for _, r := range refusedRanges {
		if r.prefix.Contains(addr) {
			return &RefusedError{Addr: addr, Reason: r.reason}
		}
	}
	if addr.IsUnspecified() || addr.IsLoopback() || addr.IsPrivate() || addr.IsMulticast() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() {
		return &RefusedError{Addr: addr, Reason: "a non-public address"}
	}
	return nil
}

// Control is a net.Dialer.Control hook: it runs after DNS resolution with
// the "ip:port" about to be dialed and refuses addresses the policy refuses.
// Because the check is on the address actually dialed, a host name that
// resolves (or rebinds) to an internal address is refused too.
func (p EndpointPolicy) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("refused: network %q is not allowed for model endpoints", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused: cannot parse dialed address %q: %w", address, err)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a net.Dialer that applies the policy to every address it
// dials, with the given connect timeout (0 means 10 seconds).
func (p EndpointPolicy) Dialer(connect time.Duration) *net.Dialer {
	if connect <= 0 {
		connect = 10 * time.Second
	}
	return &net.Dialer{
		Timeout:   connect,
		KeepAlive: 30 * time.Second,
		Resolver:  p.Resolver,
		Control:   p.Control,
	}
}

// Timeouts bound the phases of an outbound request. A zero field means the
// default given beside it.
type Timeouts struct {
	// Connect bounds DNS resolution plus the TCP (and TLS) handshake
	// (default 10s).
	Connect time.Duration
	// FirstByte bounds the wait for response headers after the request is
	// written (http.Transport.ResponseHeaderTimeout; default 2 minutes,
	// since a model may think before answering).
	FirstByte time.Duration
	// Total bounds the whole request including reading the body
	// (http.Client.Timeout; default 10 minutes).
	Total time.Duration
}

// NewSafeHTTPClient returns an http.Client for participant-supplied URLs.
// Every connection, including those made for redirects, goes through
// policy's dial check; redirects are also refused up front when they name a
// refused IP literal, and at most MaxRedirects are followed. The client never
// uses an HTTP proxy from the environment (the dial check would then see the
// proxy's address, not the model server's). Response bodies are limited by
// the reader: Client reads at most MaxResponseBytes.
func NewSafeHTTPClient(policy EndpointPolicy, t Timeouts) *http.Client {
	if t.FirstByte <= 0 {
		t.FirstByte = 2 * time.Minute
	}
	if t.Total <= 0 {
		t.Total = 10 * time.Minute
	}
	d := policy.Dialer(t.Connect)
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    d.Timeout,
		ResponseHeaderTimeout:  t.FirstByte,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   t.Total,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= MaxRedirects {
				return fmt.Errorf("refused: stopped after %d redirects", MaxRedirects)
			}
			if a, err := netip.ParseAddr(strings.Trim(req.URL.Hostname(), "[]")); err == nil {
				if err := policy.Check(a); err != nil {
					return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
				}
			}
			return nil
		},
	}
}
