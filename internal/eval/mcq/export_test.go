package mcq

// RenderDefault exposes renderDefault to the external tests.
var RenderDefault = renderDefault
