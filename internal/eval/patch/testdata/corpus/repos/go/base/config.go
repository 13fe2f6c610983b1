package calc

// precision is read once, at start-up.
var precision = defaultPrecision()
