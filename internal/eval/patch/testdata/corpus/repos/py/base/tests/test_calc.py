from calc import add


def test_one():
    assert add(0, 0) == 0
