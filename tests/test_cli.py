"""`fast` itself: a machine fault is one line, and with -v its traceback too."""

from __future__ import annotations

import errno

import fast.commands.methods
from fast.cli import main


def test_an_os_error_is_one_line_and_verbose_adds_its_traceback(monkeypatch, capsys):
    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/x.png")

    monkeypatch.setattr(fast.commands.methods, "run_methods", full_disk)
    assert main(["methods"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fast methods: error: cannot write /data/out/x.png: No space left")
    assert main(["-v", "methods"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in full_disk" in err
    assert err.strip().splitlines()[-1].startswith("fast methods: error: cannot write /data/out/x.png")
