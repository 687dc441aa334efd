"""The README's examples run exactly as written."""

import contextlib
import io
import json
import os
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_embedding_example_runs_as_shown(tmp_path):
    [example] = python_blocks()
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(example, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue().split() == ["1", "floating_not_available"]
    assert (tmp_path / "licenses-data" / "data.mdb").exists()


def test_the_readme_starts_with_the_two_commands():
    head = README.read_text(encoding="utf-8")[:1500]
    assert "./run-server" in head and "./run-tests" in head
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./run-tests" in ci


def test_the_five_minute_tour_gives_what_it_says(server):
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## A five-minute tour") :]
    block = re.search(r"```sh\n(.*?)```", tour, re.S).group(1)
    commands = [
        c.replace("localhost:8080", server.url.split("//")[1])
        for c in block.replace("\\\n", " ").splitlines()
        if c.startswith("curl")
    ]
    outputs = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert json.loads(outputs[0])["floating_users"] == 1
    assert json.loads(outputs[1])["floating_slots_in_use"] == 1
    assert json.loads(outputs[2])["code"] == "floating_not_available"
    assert json.loads(outputs[3])["borrowed_until"] is not None
    assert json.loads(outputs[4])["total_consumptions"] == 5
    assert [r["user"] for r in json.loads(outputs[5])["registrations"]] == ["alice"]
    assert outputs[6] == "user_unregistered"
    assert json.loads(outputs[7])["registration"]["user"] == "bob"
