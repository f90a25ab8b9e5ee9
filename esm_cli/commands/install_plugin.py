"""esm install-plugin gimp|krita: puts a plug-in, the torch-free client and pyzmq/msgpack
wheels for the app's own Python into the app's plug-in folder (or removes them)."""
from __future__ import annotations

import argparse
from pathlib import Path

from esm_cli.errors import UserError
from esm_cli.plugin_install import TARGETS, common, get_target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "install-plugin", help="install (or remove) the GIMP or Krita plug-in",
        description="Install a host-app plug-in with its own copies of esm_contract, esm_client, pyzmq and msgpack "
                    "(wheels for the app's Python, fetched with pip), so nothing has to be installed "
                    "into the app's Python. See docs/gimp.md and docs/krita.md.")
    parser.add_argument("target", choices=sorted(TARGETS), help="host application")
    parser.add_argument("--dest", type=Path, help="plug-in folder (default: the app's per-user folder)")
    parser.add_argument("--uninstall", action="store_true", help="remove the plug-in instead")
    parser.add_argument("--endpoint", help="daemon endpoint the plug-in uses by default "
                                           "(default: $ESM_ENDPOINT or tcp://127.0.0.1:5571)")
    g = parser.add_argument_group("the app's Python (default: found per OS, see the docs; on Linux the "
                                  "python3 on PATH, only when the app itself is on PATH)")
    g.add_argument("--python", metavar="EXE", help="the app's Python interpreter, run once to ask for its "
                                                   "version and platform")
    g.add_argument("--python-version", metavar="X.Y", help="instead of --python: its version ...")
    g.add_argument("--platform", action="append", default=[], metavar="TAG",
                   help="... and its pip platform tag(s), e.g. manylinux_2_17_x86_64, win_amd64, "
                        "macosx_11_0_arm64 (repeatable)")
    g.add_argument("--wheel-dir", type=Path, metavar="DIR",
                   help="take the pyzmq/msgpack wheels from DIR instead of the package index (offline)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = get_target(args.target)
    dest = args.dest if args.dest is not None else target.default_dest()
    if args.uninstall:
        print("\n".join(common.uninstall(target, dest)) or f"nothing of esm's in {dest}")
        return 0
    assumed = ""
    if args.python_version or args.platform:
        if args.python:
            raise UserError("give either --python or --python-version/--platform")
        python = common.python_from_flags(args.python_version or "", args.platform)
    elif args.python:
        python = common.inspect_python(args.python)
    else:
        executable, assumed = common.default_python(target)
        python = common.inspect_python(executable)
    from esm_client.runtime import default_endpoint

    endpoint = default_endpoint(args.endpoint)
    installed, edited = common.install(target, dest, python, endpoint, args.wheel_dir)
    print("\n".join([f"installed the {target.app} plug-in in {installed}",
                     f"  for {python.describe()}"] + [f"  {line}" for line in [assumed] + edited if line] +
                    [f"  daemon: {endpoint}, started when needed with: "
                     f"{' '.join(common.daemon_start_command())} --endpoint {endpoint}", target.check_hint]))
    return 0
