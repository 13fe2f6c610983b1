package calc

import "testing"

func TestSub(t *testing.T) {
	if Sub(3, 1) != 2 {
		t.Fatal("sub")
	}
}

func TestAdd(t *testing.T) {
	if Add(1, 2) != 3 {
		t.Fatal("add")
	}
}
