"""What a stalled server does to live gradio_clients: their heartbeat drops, Gradio fires `demo.unload`.

    python tools/heartbeat_stall.py call --stall 25                # a client uploads, a stall, it calls again
    python tools/heartbeat_stall.py count --stall 12 --clients 12  # how many of N live clients one stall unloads

The app is launched on loopback with a temporary runtime dir; an `async` route that blocks for --stall seconds
stands for a starved event loop. GRADIO_HEARTBEAT_INTERVAL, when set, overrides the app's heartbeat interval.
docs/reliability.md ("Sessions that go away") shows the results.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IMAGES = Path("/work/data/emoji-faces")
TRAIN = dict(image_size=32, channels="colour", steps=3, batch_size=4, ngf=8, ndf=8, nz=16, ema_decay=0.99)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(stall_s: float):
    """The app on a free port, with a /stall route and a record of unloads -> (url, ctx, unloaded keys)."""
    os.environ.setdefault("ATELIER_RUNTIME_DIR", tempfile.mkdtemp())
    from app import build_demo, serve
    from ui.context import AppContext

    ctx, unloaded = AppContext(), []
    demo = build_demo(ctx)
    unload = ctx.sessions.unload
    ctx.sessions.unload = lambda key: (unloaded.append(key), unload(key))  # what app.py's unload calls
    port = free_port()
    serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)

    @demo.app.get("/stall")
    async def stall() -> dict:
        time.sleep(stall_s)  # blocks the event loop, as a starved process does
        return {}

    return f"http://127.0.0.1:{port}/", ctx, unloaded


def stall(url: str, stall_s: float) -> None:
    """Block the server's event loop for stall_s seconds (returns when it is over)."""
    import httpx

    httpx.get(url + "stall", timeout=stall_s + 60)


def call_again(stall_s: float, images: Path) -> str:
    """One client uploads, the server stalls, the client starts a run -> what happened."""
    from gradio_client import Client, handle_file

    url, ctx, unloaded = launch(stall_s)
    client = Client(url, verbose=False)
    files = [handle_file(str(p)) for p in sorted(images.glob("*.png"))[:5]]
    client.predict(files=files, image_size=32, api_name="/upload")
    stall(url, stall_s)
    time.sleep(3)  # the heartbeat's end reaches the server
    lost = f"heartbeat thread alive: {client.heartbeat.is_alive()}, unloads: {len(unloaded)}"
    try:
        client.submit(**TRAIN, api_name="/start").result(timeout=300)
        return f"{lost}; the next /start trains; sessions open: {len(ctx.sessions.hashes())}"
    except Exception as err:  # the failure this tool exists to show
        return f"{lost}; the next /start fails: {err}"


def count(stall_s: float, clients: int) -> str:
    """N clients connected at phases spread over one heartbeat interval, one stall -> how many unloaded."""
    from gradio import utils
    from gradio_client import Client

    url, _, unloaded = launch(stall_s)
    rate = utils.get_heartbeat_rate()
    live = []
    for _ in range(clients):
        live.append(Client(url, verbose=False))
        time.sleep(rate / clients)
    threading.Thread(target=stall, args=(url, stall_s)).start()
    time.sleep(stall_s + 5)
    gone = sum(not c.heartbeat.is_alive() for c in live)
    return (f"heartbeat every {rate:g} s, stall {stall_s:g} s: {len(unloaded)} of {clients} unloaded, "
            f"{gone} heartbeats gone")


def main() -> None:
    """Parse the command line and run one experiment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["call", "count"])
    parser.add_argument("--stall", type=float, default=25.0, help="seconds the event loop is blocked")
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--images", type=Path, default=IMAGES, help="a folder of PNGs (call)")
    args = parser.parse_args()
    print(call_again(args.stall, args.images) if args.what == "call" else count(args.stall, args.clients))
    os._exit(0)  # the launched server's threads


if __name__ == "__main__":
    main()
