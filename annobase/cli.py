"""The `annobase` operator command (CONTRACT.md section 5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="annobase", description="Operate the annobase data platform.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="the whole flow end to end on embedded defaults")
    demo.add_argument("--workdir", type=Path, default=Path(".annobase"), help="embedded store and instance")
    demo.add_argument("--items", type=int, default=30, help="items per simulated delivery")
    demo.add_argument("--seed", type=int, default=2026)
    verify = commands.add_parser("verify", help="re-hash a release and check its signature")
    verify.add_argument("release", help="datasets/{industry}/{version}")
    verify.add_argument(
        "--public-key", help="PEM of the Ed25519 public key (default: the release's key in datasets/KEYS)"
    )
    verify.add_argument(
        "--fingerprint", help="sha256:… of the only key you trust; a release signed by another is a mismatch"
    )
    trace = commands.add_parser("trace", help="an item's path from upload to every release that holds it")
    trace.add_argument("item_key", help="client_id/delivery_id/item_id")
    ledger = commands.add_parser("ledger", help="the provenance ledger")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_verify = ledger_commands.add_parser(
        "verify", help="recompute the hash chains and name the first broken link"
    )
    ledger_verify.add_argument("client_id", nargs="?", help="one client's chain (default: every client's)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from annobase.demo import run_demo

        return run_demo(args.workdir.absolute(), args.items, args.seed)
    if args.command == "verify":
        from annobase.verify import run_verify

        return run_verify(args.release, args.public_key, args.fingerprint)
    if args.command == "ledger":
        from annobase.ledger_cli import run_ledger_verify

        return run_ledger_verify(args.client_id)
    from annobase.trace import run_trace

    return run_trace(args.item_key)


if __name__ == "__main__":
    sys.exit(main())
