package egress_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"crucible/internal/egress"
	"crucible/internal/inference"
)

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "an empty list allows nothing", in: "", want: ""},
		{name: "prefixes are kept in order", in: "127.0.0.0/8,10.0.0.0/8", want: "127.0.0.0/8,10.0.0.0/8"},
		{name: "spaces and empty entries are ignored", in: " 127.0.0.0/8 , ,::1/128", want: "127.0.0.0/8,::1/128"},
		{name: "a single address becomes a host prefix", in: "10.1.2.3,::1", want: "10.1.2.3/32,::1/128"},
		{name: "host bits are masked off", in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{name: "a malformed prefix is rejected", in: "10.0.0.0/33", wantErr: "not a CIDR prefix"},
		{name: "a host name is rejected", in: "localhost", wantErr: "neither a CIDR prefix nor an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := egress.ParseAllowList(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAllowList(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Fatalf("ParseAllowList(%q) = %q, %v; want %q", tt.in, p.String(), err, tt.want)
			}
		})
	}
}

func TestEndpointPolicyCheck(t *testing.T) {
	loopback, err := egress.ParseAllowList("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		policy egress.EndpointPolicy
		addr   string
		reason string // "" means allowed
	}{
		{"a public IPv4 address is allowed", egress.EndpointPolicy{}, "93.184.216.34", ""},
		{"a public IPv6 address is allowed", egress.EndpointPolicy{}, "2606:4700::1111", ""},
		{"loopback is refused", egress.EndpointPolicy{}, "127.0.0.1", "a loopback address"},
		{"all of 127/8 is loopback", egress.EndpointPolicy{}, "127.1.2.3", "a loopback address"},
		{"IPv6 loopback is refused", egress.EndpointPolicy{}, "::1", "a loopback address"},
		{"an IPv4-mapped loopback is refused", egress.EndpointPolicy{}, "::ffff:127.0.0.1", "a loopback address"},
		{"a NAT64 loopback is refused", egress.EndpointPolicy{}, "64:ff9b::7f00:1", "a loopback address"},
		{"10/8 is private", egress.EndpointPolicy{}, "10.0.0.1", "a private address"},
		{"172.16/12 is private", egress.EndpointPolicy{}, "172.31.255.254", "a private address"},
		{"172.32 is outside 172.16/12", egress.EndpointPolicy{}, "172.32.0.1", ""},
		{"192.168/16 is private", egress.EndpointPolicy{}, "192.168.1.1", "a private address"},
		{"an IPv6 unique local address is private", egress.EndpointPolicy{}, "fd12:3456::1", "a private address"},
		{"the metadata service is named", egress.EndpointPolicy{}, "169.254.169.254", "the cloud metadata service"},
		{"link-local is refused", egress.EndpointPolicy{}, "169.254.1.1", "a link-local address"},
		{"IPv6 link-local is refused", egress.EndpointPolicy{}, "fe80::1", "a link-local address"},
		{"multicast is refused", egress.EndpointPolicy{}, "224.0.0.1", "a multicast address"},
		{"IPv6 multicast is refused", egress.EndpointPolicy{}, "ff02::1", "a multicast address"},
		{"the unspecified address is refused", egress.EndpointPolicy{}, "0.0.0.0", `a "this network" address`},
		{"the IPv6 unspecified address is refused", egress.EndpointPolicy{}, "::", "an unspecified address"},
		{"CGNAT is refused", egress.EndpointPolicy{}, "100.64.0.1", "a shared (CGNAT) address"},
		{"broadcast is refused", egress.EndpointPolicy{}, "255.255.255.255", "a reserved address"},
		{"an allowed prefix is reachable", loopback, "127.0.0.1", ""},
		{"an allow list does not open other ranges", loopback, "10.0.0.1", "a private address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tt.addr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.reason) || !egress.IsRefused(err) {
				t.Fatalf("Check(%s) = %v, want a RefusedError naming %q", tt.addr, err, tt.reason)
			}
		})
	}
}

func TestRefusedErrorTellsTheOperatorWhatToDo(t *testing.T) {
	err := egress.EndpointPolicy{}.Check(netip.MustParseAddr("127.0.0.1"))
	want := "egress policy refused: 127.0.0.1 is a loopback address; the operator can allow it with --allow-endpoints"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

// fakeDNS answers every A query with ip and every other query with no
// records, like a rebinding attacker's name server. It returns a resolver
// that asks it (and nothing else).
func fakeDNS(t *testing.T, ip netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], ip); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// dnsAnswer builds the response to a one-question DNS query.
func dnsAnswer(q []byte, ip netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	// Find the end of the question: labels, then type and class.
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	end := i + 5
	resp := append([]byte(nil), q[:end]...)
	resp[2] = 0x81 // QR, RD
	resp[3] = 0x80 // RA, NOERROR
	binary.BigEndian.PutUint16(resp[6:], 0)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	if qtype == 1 { // A
		binary.BigEndian.PutUint16(resp[6:], 1)
		v4 := ip.As4()
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
		resp = append(resp, v4[:]...)
	}
	return resp
}

// serverPort starts an HTTP server on 127.0.0.1 answering "ok" and returns
// its port.
func serverPort(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestSafeHTTPClient(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	port := serverPort(t, ok)
	// The rebinding name resolves to the loopback server above.
	rebind := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	// redirector answers on 127.0.0.1 and redirects to the path's target.
	redirector := serverPort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+strings.TrimPrefix(r.URL.Path, "/"), http.StatusFound)
	}))
	// A server on 127.0.0.2, reachable on Linux but outside 127.0.0.1/32.
	var other string
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		srv := httptest.NewUnstartedServer(ok)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		other = ln.Addr().String()
	}

	only1 := netip.MustParsePrefix("127.0.0.1/32")
	tests := []struct {
		name    string
		allow   []netip.Prefix
		url     string
		refused string // "" means the request succeeds with "ok"
	}{
		{"a loopback IP is refused by default", nil, "http://127.0.0.1:" + port + "/", "refused: 127.0.0.1 is a loopback address"},
		{"a private IP is refused by default", nil, "http://10.255.255.1:" + port + "/", "refused: 10.255.255.1 is a private address"},
		{"the metadata service is refused", nil, "http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is the cloud metadata service"},
		{"localhost is refused after resolution", nil, "http://localhost:" + port + "/", "is a loopback address"},
		{"a name rebinding to loopback is refused at dial time", nil, "http://rebind.example.com:" + port + "/", "refused: 127.0.0.1 is a loopback address"},
		{"an allowed loopback CIDR is reachable", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "http://127.0.0.1:" + port + "/", ""},
		{"an allowed rebinding name is reachable", []netip.Prefix{only1}, "http://rebind.example.com:" + port + "/", ""},
		{"a redirect from an allowed server to the metadata service is refused", []netip.Prefix{only1},
			"http://127.0.0.1:" + redirector + "/169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is the cloud metadata service"},
		{"a redirect from an allowed server to a private address is refused", []netip.Prefix{only1},
			"http://127.0.0.1:" + redirector + "/10.0.0.1:" + port + "/", "refused: 10.0.0.1 is a private address"},
	}
	if other != "" {
		tests = append(tests, struct {
			name    string
			allow   []netip.Prefix
			url     string
			refused string
		}{"a redirect to a live server outside the allow list is refused at dial time", []netip.Prefix{only1},
			"http://127.0.0.1:" + redirector + "/" + other + "/", "refused: 127.0.0.2 is a loopback address"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := egress.NewSafeHTTPClient(egress.EndpointPolicy{Allow: tt.allow, Resolver: rebind},
				egress.Timeouts{Connect: 5 * time.Second, FirstByte: 5 * time.Second, Total: 10 * time.Second})
			body, err := get(ctx, c, tt.url)
			if tt.refused == "" {
				if err != nil || body != "ok" {
					t.Fatalf("GET %s = %q, %v; want ok", tt.url, body, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("GET %s succeeded (%q), want refused", tt.url, body)
			}
			if !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), "--allow-endpoints") {
				t.Fatalf("GET %s error = %v, want containing %q and the --allow-endpoints hint", tt.url, err, tt.refused)
			}
			if !egress.IsRefused(err) {
				t.Fatalf("IsRefused(%v) = false", err)
			}
		})
	}
}

func TestSafeHTTPClientCapsRedirects(t *testing.T) {
	var hops atomic.Int32
	loop := serverPort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, "/again", http.StatusFound)
	}))
	c := egress.NewSafeHTTPClient(egress.EndpointPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, egress.Timeouts{})
	_, err := get(context.Background(), c, "http://127.0.0.1:"+loop+"/")
	if err == nil || !strings.Contains(err.Error(), "stopped after") {
		t.Fatalf("error = %v, want the redirect cap", err)
	}
	if hops.Load() != egress.MaxRedirects {
		t.Fatalf("server saw %d requests, want %d", hops.Load(), egress.MaxRedirects)
	}
}

func TestSafeHTTPClientWorksWithTheInferenceClient(t *testing.T) {
	port := serverPort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model","owned_by":"x"}]}`)
	}))
	tests := []struct {
		name    string
		allow   string
		refused bool
	}{
		{"a participant URL on loopback is refused", "", true},
		{"the demo's explicit loopback allowance lets it through", "127.0.0.0/8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := egress.ParseAllowList(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			c, err := inference.New(inference.Config{BaseURL: "http://127.0.0.1:" + port + "/v1", HTTPClient: egress.NewSafeHTTPClient(p, egress.Timeouts{})})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Models(context.Background())
			if got := egress.IsRefused(err); got != tt.refused {
				t.Fatalf("Models() error = %v; refused = %v, want %v", err, got, tt.refused)
			}
		})
	}
}
