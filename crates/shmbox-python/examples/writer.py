"""Run this first, then reader.py in another terminal."""

import sys

import shmbox

name = sys.argv[1] if len(sys.argv) > 1 else "greetings"

with shmbox.SharedMemory(name, create=True, size=64) as shm:
    shm.write(b"hello from the writer")
    seen = shm.generation
    print("waiting for an answer...", flush=True)
    shm.wait_for_change(seen, timeout=60)  # sleeps until a write, GIL released
    print(shm.read().rstrip(b"\0").decode())
