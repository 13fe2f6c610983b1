package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/store/storetest"
	"crucible/internal/web"
)

// TestConnectionsThatHoldTheServerAreCut opens connections the way a
// slowloris does (headers or a body one byte at a time, or a kept-alive
// connection left idle) against a server with short timeouts: the server
// closes each, where without timeouts it held them for as long as the
// client liked. The 60 s deadline only guards against a hang.
func TestConnectionsThatHoldTheServerAreCut(t *testing.T) {
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, NoWork: true,
		Timeouts: app.Timeouts{ReadHeader: time.Second, Read: time.Second, Write: 5 * time.Second, Idle: time.Second}})
	addr := strings.TrimPrefix(url, "http://")
	const body = `{"rule":"proportional","amount":100,"scores":{"a":1}}`
	tests := []struct {
		name    string
		head    string
		trickle bool
	}{
		{"headers sent one byte at a time", "POST /api/v1/allocate HTTP/1.1\r\nHost: x\r\n", true},
		{"a body sent one byte at a time", "POST /api/v1/allocate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", true},
		{"a kept-alive connection left idle", fmt.Sprintf("POST /api/v1/allocate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.WriteString(conn, tt.head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			trickled := make(chan int)
			go func() {
				n := 0
				defer func() { trickled <- n }()
				for tt.trickle {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := conn.Write([]byte("x")); err != nil {
						return
					}
					n++
				}
			}()
			got, err := io.ReadAll(conn)
			close(stop)
			n := <-trickled
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server still held the connection after 60 s (%d bytes trickled)", n)
			}
			if tt.trickle && n >= 1000000 {
				t.Fatal("the whole slow request went through")
			}
			if !tt.trickle && !strings.HasPrefix(string(got), "HTTP/1.1 200") {
				t.Fatalf("the request before idling: %.200q", got)
			}
			t.Logf("closed by the server after %d trickled bytes; it answered %.40q", n, got)
		})
	}
}

func TestEveryResponseCarriesTheBrowserSecurityHeaders(t *testing.T) {
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, NoWork: true, PublicURL: "https://crucible.example.org"})
	for _, rq := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/label"}, {"GET", "/static/style.css"}, {"GET", "/api/v1/competitions"}, {"GET", "/api/v1/hub"},
		{"GET", "/api/v1/openapi.json"}, {"GET", "/api/v1/nope"}, {"GET", "/healthz"}, {"GET", "/metrics"}, {"POST", "/api/v1/competitions"},
	} {
		req, _ := http.NewRequest(rq.method, url+rq.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for name, want := range map[string]string{
			"Content-Security-Policy": web.ContentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s %s (%d): %s = %q, want %q", rq.method, rq.path, resp.StatusCode, name, got, want)
			}
		}
	}
	t.Run("an https public URL makes the label cookie Secure behind a proxy", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.PostForm(url+"/label/logout", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if set := resp.Header.Get("Set-Cookie"); !strings.Contains(set, web.LabelCookie) || !strings.Contains(set, "Secure") {
			t.Fatalf("Set-Cookie %q, want a Secure label cookie", set)
		}
	})
}

func TestOpenRefusesServerSettingsThatCannotWork(t *testing.T) {
	db := storetest.Databases(t)[0].URL
	for _, tt := range []struct {
		name string
		cfg  app.Config
		want string
	}{
		{"a write timeout shorter than the read timeout", app.Config{Database: db, Timeouts: app.Timeouts{Read: time.Hour}}, "must exceed read timeout"},
		{"a public URL that is not a URL", app.Config{Database: db, PublicURL: "crucible.example.org"}, "not an http(s) URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := app.Open(context.Background(), tt.cfg)
			if err == nil {
				a.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
