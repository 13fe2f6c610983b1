package calc

func defaultPrecision() int { return 2 }
