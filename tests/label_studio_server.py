"""A throwaway Label Studio for tests/test_review_live.py and scripts/review_screenshot.py: started on
127.0.0.1 with its data in a given folder, and its personal access tokens (Label Studio 1.23 turns
legacy tokens off by default) obtained the way a user would, through the login or signup form."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def label_studio_command() -> str | None:
    beside = Path(sys.executable).with_name("label-studio")
    return str(beside) if beside.is_file() else shutil.which("label-studio")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_label_studio(folder: Path, owner: str, password: str, wait: float = 300) -> Iterator[str]:
    """Yield the base URL of a Label Studio whose first account is ``owner``. The password goes
    through the environment, not the command line; no version check, analytics or Sentry."""
    command = label_studio_command()
    if command is None:
        raise RuntimeError("label-studio is not installed (pip install -e '.[review]')")
    port = free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(folder / "data"), "LABEL_STUDIO_USERNAME": owner,
           "LABEL_STUDIO_PASSWORD": password, "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
           "LABEL_STUDIO_COLLECT_ANALYTICS": "false", "LABEL_STUDIO_SENTRY_DSN": "",
           "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false"}  # fmt: skip
    base, log_path = f"http://127.0.0.1:{port}", folder / "label-studio.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([command, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + wait
            while not _healthy(base):
                if server.poll() is not None or time.monotonic() > deadline:
                    state = f"exited ({server.returncode})" if server.returncode is not None else f"not up after {wait:.0f} s"
                    raise RuntimeError(f"label-studio {state}; {log_path}: {log_path.read_text()[-2000:]}")
                time.sleep(1)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def personal_token(base: str, email: str, password: str, signup: bool) -> str:
    """Sign up (or log in) through the web form, then create the account's personal access token."""
    page = "/user/signup/" if signup else "/user/login/"
    with httpx.Client(base_url=base, timeout=60) as browser:
        browser.get(page).raise_for_status()  # sets the csrftoken cookie
        form = {"email": email, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        answer = browser.post(page, data=form, headers={"Referer": base + page})
        if answer.status_code != 302:
            raise RuntimeError(f"{base}{page}: {email} refused ({answer.status_code})")
        csrf = browser.cookies["csrftoken"]  # a new one after login
        answer = browser.post("/api/token/", headers={"X-CSRFToken": csrf, "Referer": base + "/"})
        answer.raise_for_status()
        return answer.json()["token"]


class PersonalToken(httpx.Auth):
    """Label Studio's personal access token is a JWT refresh token: each request carries a short-lived
    access token from /api/token/refresh/, fetched again when the server answers 401."""

    requires_response_body = True

    def __init__(self, refresh: str):
        self.refresh, self.access = refresh, None

    def auth_flow(self, request):
        for attempt in range(2):
            if self.access is None or attempt:
                refresh = httpx.Request("POST", request.url.join("/api/token/refresh/"), json={"refresh": self.refresh})
                answer = yield refresh
                answer.raise_for_status()
                self.access = answer.json()["access"]
            request.headers["Authorization"] = f"Bearer {self.access}"
            response = yield request
            if response.status_code != 401:
                return
