package calc

// Add adds.
func Add(a, b int) int {
	sum := a
	sum += b
	return sum
}

// Sub subtracts.
func Sub(a, b int) int { return a - b }
