"""Run writer.py first, then this in another terminal."""

import sys

import shmbox

name = sys.argv[1] if len(sys.argv) > 1 else "greetings"

with shmbox.SharedMemory(name) as shm:
    print(shm.read().rstrip(b"\0").decode())
    with shm.lock() as guard:  # a lock between unrelated processes
        if guard.owner_died:  # None, or the holder that died with it
            print("the previous holder died:", guard.owner_died)
        guard.write(b"hello back".ljust(shm.size, b"\0"))  # commits on exit
