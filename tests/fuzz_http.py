"""Helpers for throwing junk at a launched app over plain HTTP (loopback only, bounded).

We speak Gradio's HTTP API directly (POST /gradio_api/call/<api>, then read the event stream)
rather than through gradio_client, because only raw JSON can carry NaN and Infinity, and
because the client would refuse many junk values before the server ever saw them.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CallOutcome:
    """How one call ended: 'complete', 'error' (with message), 'http-<code>', or 'timeout'."""

    api: str
    kind: str
    message: str = ""


def upload(base: str, path: Path) -> dict:
    """Upload a file through /gradio_api/upload; return the FileData dict the API expects."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n")
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{base}gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        server_path = json.loads(resp.read())[0]
    return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def call(base: str, api: str, data: list, timeout: float = 60.0) -> CallOutcome:
    """POST the data (NaN allowed), then read the event stream until it completes or errors."""
    payload = json.dumps({"data": data, "session_hash": uuid.uuid4().hex[:10]}, allow_nan=True).encode()
    req = urllib.request.Request(f"{base}gradio_api/call/{api.lstrip('/')}", data=payload,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            event_id = json.loads(resp.read())["event_id"]
    except urllib.error.HTTPError as err:
        return CallOutcome(api, f"http-{err.code}", err.read().decode(errors="replace")[:300])
    return _read_stream(f"{base}gradio_api/call/{api.lstrip('/')}/{event_id}", api, timeout)


def _read_stream(url: str, api: str, timeout: float) -> CallOutcome:
    deadline = time.monotonic() + timeout
    event = ""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            for raw in resp:
                line = raw.decode(errors="replace").strip()
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    body = line.split(":", 1)[1].strip()
                    return CallOutcome(api, event, _error_text(body) if event == "error" else "")
                if time.monotonic() > deadline:
                    return CallOutcome(api, "timeout")
    except TimeoutError:
        return CallOutcome(api, "timeout")
    return CallOutcome(api, "closed")


def _error_text(body: str) -> str:
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        return body
    return (parsed or {}).get("error") or "" if isinstance(parsed, dict) else str(parsed)


def junk_files(folder: Path) -> list[Path]:
    """Files that are not what they claim: text as PNG, empty, random bytes as ZIP, a pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    files = {
        "text.png": b"this is not a picture\n",
        "empty.jpg": b"",
        "noise.zip": bytes(rng.randrange(256) for _ in range(2048)),
        "model.pt": b"\x80\x04\x95junk pickle",
        "truncated.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return [folder / name for name in files]


JUNK_SCALARS = [float("nan"), float("inf"), -1e12, 1e12, -1, 0, "abc", "", None, "../../etc/passwd",
                "x" * 5000, True, [], {"a": 1}]


def junk_value(param: dict, rng: random.Random, files: list[dict]) -> object:
    """A junk value for one API parameter, picked by its declared type."""
    declared = json.dumps(param.get("python_type", {})) + str(param.get("component", ""))
    if "filepath" in declared or "File" in declared or "Image" in declared or "Gallery" in declared:
        return rng.choice([*files, None, "not-a-file", {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}])
    return rng.choice(JUNK_SCALARS)
