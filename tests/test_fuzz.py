"""Fuzz: junk at every API endpoint ends in a result or a clear error, and the server lives on."""

from __future__ import annotations

import json
import random
import urllib.request

import pytest

from tests.fuzz_http import call, junk_files, junk_value, upload

ROUNDS = 4  # per endpoint; bounded so the whole test stays well under a minute on 2 cores
# Every endpoint is fuzzed: the public ones and the internal steps hidden from the API page (which a
# client can still call), and events that only stop or clean up; nothing is excluded.


def _endpoints(app_url: str) -> dict:
    with urllib.request.urlopen(f"{app_url}gradio_api/info?all_endpoints=true", timeout=30) as resp:
        return json.loads(resp.read())["named_endpoints"]


def _server_alive(app_url: str) -> bool:
    with urllib.request.urlopen(app_url, timeout=30) as resp:
        return resp.status == 200


@pytest.mark.integration
@pytest.mark.slow
def test_junk_at_every_endpoint(app_url, tmp_path):
    rng = random.Random(1234)
    files = [upload(app_url, path) for path in junk_files(tmp_path / "junk")]
    outcomes = []
    endpoints = _endpoints(app_url)
    assert {"/generate", "/generate_after_dice", "/resume_last", "/train_restore"} <= set(endpoints)
    for api, spec in sorted(endpoints.items()):
        for _ in range(ROUNDS):
            data = [junk_value(p, rng, files) for p in spec["parameters"]]
            outcome = call(app_url, api, data, timeout=60)
            outcomes.append(outcome)
            sent = json.dumps(data, allow_nan=True)[:200]
            assert outcome.kind in ("complete", "error", "http-422"), f"{api} with {sent}: {outcome}"
            if outcome.kind == "error":
                assert outcome.message.strip(), f"{api}: an error without a message for {sent}"
    assert outcomes, "the app exposes no API endpoint"
    assert _server_alive(app_url)


@pytest.mark.integration
@pytest.mark.slow  # one call per numeric parameter of every endpoint: a long loop, whole suite only
def test_nan_in_any_number_is_refused_with_a_message(app_url):
    for api, spec in sorted(_endpoints(app_url).items()):
        params = spec["parameters"]
        defaults = [p.get("parameter_default") for p in params]
        for i, param in enumerate(params):
            if param.get("python_type", {}).get("type") not in ("float", "int"):
                continue
            data = list(defaults)
            data[i] = float("nan")
            outcome = call(app_url, api, data, timeout=60)
            assert outcome.kind == "error" and outcome.message.strip(), \
                f"{api}: NaN for {param.get('parameter_name') or param.get('label')} gave {outcome}"
    assert _server_alive(app_url)
