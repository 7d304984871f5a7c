"""Command-line arguments shared by the per-shape benchmarks: --rounds and --shapes (names of SHAPES)."""

from __future__ import annotations

import argparse


def shape_parser(doc: str, rounds: int = 7) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc`, with --rounds (default `rounds`) and --shapes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    return parser


def parse_shapes(parser: argparse.ArgumentParser, shapes: dict) -> tuple[argparse.Namespace, list[str]]:
    """(arguments, the shape names asked for); a bad --rounds or an unknown name is a parser error."""
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    names = args.shapes.split(",") if args.shapes else list(shapes)
    unknown = [n for n in names if n not in shapes]
    if unknown:
        parser.error(f"unknown shapes {unknown}; valid: {', '.join(shapes)}")
    return args, names
