package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"crucible/internal/web"
)

func TestPagesCarryTheBrowserSecurityHeaders(t *testing.T) {
	f := newLabelFixture(t)
	for _, path := range []string{"/", "/label", "/static/htmx.min.js", "/c/nope"} {
		resp, err := http.Get(f.server.URL + path)
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
				t.Errorf("GET %s (%d): %s = %q, want %q", path, resp.StatusCode, name, got, want)
			}
		}
	}
	if !strings.Contains(web.ContentSecurityPolicy, "script-src 'self';") || strings.Contains(web.ContentSecurityPolicy, "unsafe") {
		t.Fatalf("policy %q allows scripts from elsewhere", web.ContentSecurityPolicy)
	}
}

func TestTheLabelCookieIsSecureOverTLSOrWhenTheOperatorSaysSo(t *testing.T) {
	f := newLabelFixture(t)
	tests := []struct {
		name       string
		cfg        web.LabelConfig
		url        string
		forwarded  string
		wantSecure bool
	}{
		{"plain http", web.LabelConfig{}, "http://crucible.test/label/login", "", false},
		{"a request over TLS", web.LabelConfig{}, "https://crucible.test/label/login", "", true},
		{"X-Forwarded-Proto is ignored unless the operator trusts it", web.LabelConfig{}, "http://crucible.test/label/login", "https", false},
		{"X-Forwarded-Proto from a trusted proxy", web.LabelConfig{TrustForwardedProto: true}, "http://crucible.test/label/login", "https", true},
		{"a trusted proxy that says http", web.LabelConfig{TrustForwardedProto: true}, "http://crucible.test/label/login", "http", false},
		{"the operator serves https (public URL)", web.LabelConfig{SecureCookie: true}, "http://crucible.test/label/login", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Labeling = f.svc
			pages, err := web.NewLabel(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, tt.url, strings.NewReader(url.Values{"key": {f.key}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.forwarded != "" {
				req.Header.Set("X-Forwarded-Proto", tt.forwarded)
			}
			rec := httptest.NewRecorder()
			pages.ServeHTTP(rec, req)
			var cookie *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == web.LabelCookie {
					cookie = c
				}
			}
			if rec.Code != http.StatusSeeOther || cookie == nil || cookie.Value != f.key {
				t.Fatalf("login: %d, cookie %v", rec.Code, cookie)
			}
			if cookie.Secure != tt.wantSecure {
				t.Fatalf("cookie Secure = %v, want %v", cookie.Secure, tt.wantSecure)
			}
		})
	}
}
