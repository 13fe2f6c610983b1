package mcq

// RenderDefault exposes renderDefault to the external tests.
var RenderDefault = renderDefault

// GenerativeDetailJSON exposes generativeDetail to the external tests.
var GenerativeDetailJSON = generativeDetail
