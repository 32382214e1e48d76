"""The examples in crates/shmbox-python/examples, which the READMEs show."""

import subprocess
import sys
from pathlib import Path


def test_the_readme_example_runs(name):
    """The two-process example of the README (examples/writer.py and
    examples/reader.py), with a name of its own."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    writer = subprocess.Popen(
        [sys.executable, str(examples / "writer.py"), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert writer.stdout.readline() == b"waiting for an answer...\n"
        reader = subprocess.run(
            [sys.executable, str(examples / "reader.py"), name],
            capture_output=True,
            timeout=60,
        )
        assert reader.returncode == 0, reader.stderr.decode()
        assert reader.stdout == b"hello from the writer\n"
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err.decode()
        assert out == b"hello back\n"
    finally:
        writer.kill()
        writer.wait()
