from calc import add


def test_one():
    assert add(0, 0) == 0


def test_add():
    assert add(1, 2) == 3
