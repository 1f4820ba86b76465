"""The README quickstarts, run as a partner would: each built package is installed into an
empty folder with only its package manager, then the quickstart's code blocks (extracted
from the package README, so they cannot rot) run against the live stack (make sdk-test).

    python -m sdk.quickstarts typescript|python|go

The blocks read the stack's addresses and test merchant from VIPAY_* (sdk/stack.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from sdk import go_proxy

SDK = Path(__file__).resolve().parent
DIST = SDK / "dist"


def quickstart_blocks(readme: Path, lang: str) -> str:
    """The `lang` code blocks of the README's "## Quickstart" section, joined."""
    text = readme.read_text()
    section = text[text.index("## Quickstart"):]
    section = section[:section.find("\n## ", 3)] if "\n## " in section[3:] else section
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, re.S)
    if not blocks:
        raise SystemExit(f"{readme}: no ```{lang} block in its Quickstart section")
    return "\n".join(blocks)


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=cwd, env=env or os.environ, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def expect(output: str, *patterns: str) -> None:
    print(output, end="")
    for p in patterns:
        if not re.search(p, output, re.M):
            raise SystemExit(f"quickstart output lacks {p!r}")


def typescript(folder: Path) -> None:
    tarball = next(DIST.glob("vipay-sdk-*.tgz"))
    run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(tarball)], folder)
    (folder / "quickstart.mjs").write_text(quickstart_blocks(SDK / "typescript" / "README.md", "js"))
    expect(run(["node", "quickstart.mjs"], folder), r"^charged VC\w+ 4\.51$", r"^balance \d", r"^not found: ORDER_NOT_FOUND request \S+")


def python(folder: Path) -> None:
    wheel = next(DIST.glob("vipay_sdk-*.whl"))
    venv.create(folder / "venv", with_pip=True)
    py = str(folder / "venv" / "bin" / "python")
    run([py, "-m", "pip", "install", "-q", str(wheel)], folder)
    (folder / "quickstart.py").write_text(quickstart_blocks(SDK / "python" / "README.md", "python"))
    expect(run([py, "quickstart.py"], folder), r"^charged VC\w+ 4\.51$", r"^balance \d", r"^not found: ORDER_NOT_FOUND request \S+")
    # The generated stubs ship in the same wheel, for internal Python services: a real call.
    stubs = ("import os, subprocess\nfrom vipay_sdk import channel\nfrom vipay.recharge.v1 import wallet_pb2, wallet_pb2_grpc\n"
             "token = subprocess.run([os.environ['VIPAY_PYTHON'], '-m', 'server', 'token', '--user-id', '0', '--role', "
             "'service'], cwd=os.environ['VIPAY_ROOT'], capture_output=True, text=True, check=True).stdout.strip()\n"
             "w = wallet_pb2_grpc.WalletServiceStub(channel(os.environ['VIPAY_GRPC'], token))\n"
             "print('wallet balance', w.GetWallet(wallet_pb2.GetWalletRequest(user_id=42)).balance_fen)\n")
    expect(run([py, "-c", stubs], folder), r"^wallet balance \d+$")


def go(folder: Path) -> None:
    """The README's commands as a partner runs them (go mod init, go get, go run .); the module
    proxy is a folder (sdk/go_proxy.py: no network here) and GOSUMDB is off, so the checksums
    `go get` writes into the partner's go.sum come from what that proxy served."""
    module, version = go_proxy.module_version()
    go_proxy.build(folder / "proxy")
    env = {**os.environ, "GOPROXY": f"file://{folder / 'proxy'}", "GOSUMDB": "off", "GO111MODULE": "on",
           "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local", "GOPATH": str(folder / "gopath"),
           "GOCACHE": str(SDK / "go" / ".cache" / "build")}
    app = folder / "quickstart"
    app.mkdir()
    readme = SDK / "go" / "README.md"
    commands = quickstart_blocks(readme, "sh")
    if f"go get {module}@{version}\n" not in commands:
        raise SystemExit(f"{readme}: the Quickstart's go get does not name {module}@{version} (version.go)")
    run(["bash", "-euo", "pipefail", "-c", commands], app, env)
    (app / "main.go").write_text(quickstart_blocks(readme, "go"))
    expect(run(["go", "run", "."], app, env), r"^charged VC\w+ 4\.51$", r"^not found: ORDER_NOT_FOUND request \S+")
    if f"{module} {version} h1:" not in (app / "go.sum").read_text():
        raise SystemExit(f"the partner's go.sum lacks {module} {version}")


def main(argv: list[str]) -> int:
    languages = {"typescript": typescript, "python": python, "go": go}
    for name in argv or list(languages):
        with tempfile.TemporaryDirectory(prefix=f"vipay-quickstart-{name}-") as tmp:
            print(f"== quickstart: {name} (empty folder {tmp})", flush=True)
            languages[name](Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
