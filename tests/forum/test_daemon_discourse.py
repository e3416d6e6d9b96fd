"""The daemon on the Discourse backend, end to end: a case filed through the API is posted to
(fake, contract-checked) Discourse exactly once under the hotline account, and a spokesperson's
acceptance reaches the case through a signed webhook to the daemon."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx

from tests.daemon.test_daemon import DaemonProcess, free_port
from tests.forum.discourse_server import daemon_config

SECRETS = {
    "HOTLINE_BRIDGE_SESSION_SECRET": "session-secret-0123456789",
    "HOTLINE_BRIDGE_DISCOURSE_API_KEY": "test-api-key",
    "HOTLINE_BRIDGE_DISCOURSE_WEBHOOK_SECRET": "test-webhook-secret",
    "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "twilio-token",
}
CASE = {
    "caller_surname": "朱", "caller_honorific": "女士", "caller_full_name": "朱小红", "caller_phone": "13912345678",
    "department": "CITY-JCY", "location": "柯城区府山街道", "title": "房屋产权登记问题",
    "description": "想咨询老房子的产权登记应该找哪个部门办理，已经跑了好几次。", "callback_wanted": True,
    "sms_consent": False, "best_time": "morning",
}


def cli(config, *args, stdin: str | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "bridge", *args, "-c", str(config)], input=stdin,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], **SECRETS})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_case_posted_once_and_accepted_by_webhook(discourse_site, tmp_path):
    port = free_port()
    config = daemon_config(tmp_path, port, discourse_site.base_url)
    cli(config, "db", "upgrade")
    cli(config, "user", "add", "wangfang", "--role", "operator", "--password-stdin",
        stdin="a long enough password\n")
    token = cli(config, "token", "create", "wangfang").strip().splitlines()[-1]
    daemon = DaemonProcess(config, port, env={"PATH": os.environ["PATH"], **SECRETS})
    try:
        daemon.health()
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
        filed = api.post("/api/v1/cases", json=CASE)
        assert filed.status_code == 201, filed.text
        number = filed.json()["number"]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            case = api.get(f"/api/v1/cases/{number}").json()
            if case["state"] == "posted":
                break
            time.sleep(0.3)
        assert case["state"] == "posted", case
        topics = [t for t in discourse_site.topics.values() if t.external_id == number]
        assert len(topics) == 1
        first_post = discourse_site.posts[topics[0].post_ids[0]]
        assert "13912345678" not in first_post.raw and "朱小红" not in first_post.raw
        assert "朱女士" in first_post.raw

        discourse_site.webhook_queue.clear()
        discourse_site.reply("jcy_zhang", topics[0].id, "已受理，我们将尽快核实处理。")

        async def deliver():
            async with httpx.AsyncClient(timeout=10) as client:
                return await discourse_site.deliver_webhooks(
                    client, f"http://127.0.0.1:{port}/forum/discourse/webhook")

        answers = asyncio.run(deliver())
        assert [a.status_code for a in answers] == [200]
        case = api.get(f"/api/v1/cases/{number}").json()
        assert case["state"] == "accepted", case
        assert [e["kind"] for e in case["timeline"]].count("accepted") == 1

        forged = httpx.post(f"http://127.0.0.1:{port}/forum/discourse/webhook", content=b"{}",
                            headers={"X-Discourse-Event-Signature": "sha256=" + "0" * 64,
                                     "X-Discourse-Event-Type": "post", "X-Discourse-Event": "post_created"})
        assert forged.status_code == 401
    finally:
        status, _, _, err = daemon.terminate()
    assert status == 0, err
