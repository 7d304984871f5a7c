"""Shared helpers of the command-line tests: run `jaxgan` in-process, check a one-line error."""

from __future__ import annotations

from jaxgan import cli


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """cli.main(argv) (items made strings) -> (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one non-blank line of stderr (asserts there is exactly one and no traceback)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit status 2 and one line of stderr holding every needle; returns the line."""
    assert code == 2, err
    line = error_line(err)
    for needle in needles:
        assert needle in line, (needle, line)
    return line
