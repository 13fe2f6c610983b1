package web

import "net/http"

// ContentSecurityPolicy lets pages load scripts, styles, images and forms
// from this server only: the UI has no inline script or style (htmx and
// label.js are files under /static/, charts are inline SVG elements), so a
// string that slips past html/template's escaping still cannot run. No
// other site may frame a page (clickjacking the /label forms).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SecurityHeaders sets the browser protections on every response of next:
// the content security policy, no framing, no MIME sniffing (a JSON answer
// echoing user text is never read as HTML) and no referrer beyond this
// origin. app wraps the whole server (API included) in it; the UI's own
// handlers set the same headers so they are safe when mounted alone.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}
