from service.memory import Memory


def test_memory_is_bounded_and_forgets_everything_when_full():
    memory: Memory[int, str] = Memory(3)
    for key in range(3):
        memory.put(key, str(key))
    memory.put(1, "again")  # a key it holds: nothing forgotten
    assert [memory.get(key) for key in range(3)] == ["0", "again", "2"]
    memory.put(3, "3")  # full: the rest forgotten, this one kept
    assert [memory.get(key) for key in range(4)] == [None, None, None, "3"]
    memory.forget(3)
    memory.forget(7)  # forgetting what it never held is no error
    assert memory.get(3) is None
