"""Container smoke test: build the image, run it against the SMSC simulator and Bot API emulator.

    python -m tests.e2e.container.smoke [--engine podman|docker] [--image TAG] [--no-build]

Checks what only a real container shows: the image builds, runs as uid 10001 under an init,
finds its code from any working directory, reads `.env.example` through `--env-file`, keeps its
database in the /data bind mount, answers /healthz and its HEALTHCHECK, answers a command end to
end, and stops on SIGTERM with exit 0 within 10 s, late and in the first moments (tini maps the
143 of a Python ended by the signal before its handler exists to 0).

The simulator and the emulator run in this process on loopback; the container shares the host
network (`--network host`) to reach them. Exit status: 0 passed, 1 failed (the project's fault:
each failure says which step and shows the container's log), 3 skipped (this machine cannot
build or run containers: the reason is printed). SMOKE_LOG_LEVEL=DEBUG: the bot's debug log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import aiohttp

from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import TelegramEmulator
from tests.fakes.rig import ADMIN_CHAT, LOGIN, PASSWORD, REPO, TOKEN, free_port, serve

EXIT_FAILED, EXIT_SKIPPED = 1, 3
STOP_LIMIT = 10.0  # seconds: the run contract (and docker's/podman's default grace period)
START_LIMIT = 60.0  # seconds from `run -d` to /healthz 200, generous for a loaded machine
UID = "10001"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Moments after `run -d` returns at which an early SIGTERM is sent: during interpreter start,
# imports, settings, the database check and the first getMe.
EARLY_DELAYS = (0.0, 0.2, 0.5, 1.0, 2.0)


class SmokeFailure(Exception):
    """A check failed: the project's fault."""


class SmokeSkip(Exception):
    """This machine cannot build or run containers: not the project's fault."""


def say(message: str) -> None:
    """One progress line."""
    print(f"smoke: {message}", flush=True)


class Engine:
    """podman or docker, driven through its CLI."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.podman = name == "podman"
        self.created: list[str] = []

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `<engine> args...`; raise SmokeFailure with its stderr if it fails and `check`."""
        result = subprocess.run(  # noqa: S603 - our own fixed command lines
            [self.name, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise SmokeFailure(
                f"`{self.name} {' '.join(args[:3])} ...` exited {result.returncode}: "
                f"{_noise_free(result.stderr).strip()[-2000:]}"
            )
        return result

    def build(self, image: str) -> float:
        """Build the project's Dockerfile; return the seconds it took."""
        started = time.monotonic()
        if self.podman:
            # As ../shared/container/prepare.sh explains: chroot isolation on this kind of
            # machine, docker format to keep HEALTHCHECK, the host CA bundle for pip's proxy.
            tool = "buildah" if shutil.which("buildah") else "podman"
            cmd = [tool, "bud" if tool == "buildah" else "build", "--isolation", "chroot"]
            cmd += ["--format", "docker", "--layers", "--pull=never"]
            if CA_BUNDLE.exists():
                cmd += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
        else:
            cmd = ["docker", "build"]
        cmd += ["-t", image, str(REPO)]
        result = subprocess.run(  # noqa: S603 - our own fixed command line
            cmd, capture_output=True, text=True, timeout=900, check=False
        )
        if result.returncode != 0:
            log = (result.stdout + result.stderr).strip().splitlines()
            raise SmokeFailure("image build failed:\n  " + "\n  ".join(log[-25:]))
        return time.monotonic() - started

    def start(
        self, image: str, name: str, args: Sequence[str], command: Sequence[str] = ()
    ) -> None:
        """`run -d` a container (removed at the end of the smoke test)."""
        extra = ["--health-interval", "disable"] if self.podman else []  # no systemd timers
        self.created.append(name)
        self.run("run", "-d", "--name", name, "--network", "host", *extra, *args, image, *command)

    def running(self, name: str) -> bool:
        """Whether the container is still running."""
        out = self.run("inspect", "--format", "{{.State.Running}}", name, check=False)
        return out.stdout.strip() == "true"

    def exit_code(self, name: str) -> int:
        """The container's exit code (once stopped)."""
        out = self.run("inspect", "--format", "{{.State.ExitCode}}", name)
        return int(out.stdout.strip())

    def logs(self, name: str) -> str:
        """Everything the container printed (stdout and stderr)."""
        out = self.run("logs", name, check=False)
        return out.stdout + out.stderr

    def stop(self, name: str) -> tuple[int, float]:
        """`stop --time 10` (SIGTERM, SIGKILL after 10 s); return (exit code, seconds taken)."""
        started = time.monotonic()
        self.run("stop", "--time", str(int(STOP_LIMIT)), name, timeout=60)
        elapsed = time.monotonic() - started
        return self.exit_code(name), elapsed

    def cleanup(self) -> None:
        """Remove every container this run created."""
        for name in self.created:
            self.run("rm", "--force", name, check=False)


def _noise_free(text: str) -> str:
    """Without podman's complaints that there is no systemd to schedule healthchecks."""
    return "\n".join(line for line in text.splitlines() if "systemd" not in line)


def pick_engine(wanted: str | None) -> Engine:
    """The engine to use, or SmokeSkip saying why there is none that works."""
    names = [wanted] if wanted else ["podman", "docker"]
    reasons = []
    for name in names:
        if shutil.which(name) is None:
            reasons.append(f"{name} is not installed")
            continue
        engine = Engine(name)
        info = engine.run("info", check=False, timeout=60)
        if info.returncode == 0:
            return engine
        reasons.append(f"`{name} info` failed: {_noise_free(info.stderr).strip()[-500:]}")
    raise SmokeSkip("; ".join(reasons))


def check_image(engine: Engine, image: str) -> None:
    """Static facts: user, init, healthcheck; then uid, working directory, no pip."""
    data = json.loads(engine.run("image", "inspect", image).stdout)[0]
    config = data.get("Config") or {}
    health = data.get("Healthcheck") or config.get("Healthcheck") or {}
    if (config.get("Entrypoint") or [None])[0] != "tini":
        raise SmokeFailure(f"entrypoint is {config.get('Entrypoint')}, not tini as PID 1")
    if "/healthz" not in " ".join(health.get("Test") or []):
        raise SmokeFailure(f"no HEALTHCHECK on /healthz in the image (got {health!r})")
    uid = engine.run("run", "--rm", image, "id", "-u").stdout.strip()
    if uid != UID:
        raise SmokeFailure(f"the image runs as uid {uid}, not {UID}")
    elsewhere = engine.run("run", "--rm", "-w", "/data", image, "python", "-m", "bot", "--help")
    if "usage: python -m bot" not in elsewhere.stdout:
        raise SmokeFailure("`python -m bot` does not run from another working directory")
    pip = engine.run("run", "--rm", image, "python", "-c", "import pip", check=False)
    if pip.returncode == 0:
        raise SmokeFailure("pip is still installed in the runtime image")
    say(f"image: uid {uid}, tini as PID 1, HEALTHCHECK on /healthz, no pip, any workdir: ok")


def assert_no_secret(log: str, what: str) -> None:
    """No secret in any form (any case, URL-encoded, the token's secret part alone)."""
    lowered = log.lower()
    for secret in (TOKEN.partition(":")[2], PASSWORD):
        if secret.lower() in lowered or quote(secret, safe="").lower() in lowered:
            raise SmokeFailure(f"{what}: a secret is in the container's output")


def assert_clean_log(log: str, what: str) -> None:
    """No secret in any form, no traceback."""
    assert_no_secret(log, what)
    if "Traceback" in log:
        raise SmokeFailure(f"{what}: a traceback in the container's output:\n{log[-3000:]}")


async def wait_healthy(port: int, engine: Engine, name: str) -> None:
    """Until /healthz answers 200 (fail early if the container died)."""
    deadline = time.monotonic() + START_LIMIT
    url = f"http://127.0.0.1:{port}/healthz"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            if not await asyncio.to_thread(engine.running, name):
                code = await asyncio.to_thread(engine.exit_code, name)
                log = await asyncio.to_thread(engine.logs, name)
                raise SmokeFailure(f"the container exited {code} before /healthz:\n{log[-3000:]}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SmokeFailure(f"/healthz never answered 200 within {START_LIMIT:.0f} s")


def bot_args(emu_url: str, sim_url: str, port: int, data: Path | None) -> list[str]:
    """The operator's command line: .env.example through --env-file, then the real values."""
    args = ["--env-file", str(REPO / ".env.example")]
    for key, value in {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emu_url,
        "SMSC_API_URL": sim_url,
        "SMSC_LOGIN": LOGIN,
        "SMSC_PASSWORD": PASSWORD,
        "ALLOWED_CHAT_IDS": str(ADMIN_CHAT),
        "PORT": str(port),
        "LOG_LEVEL": os.environ.get("SMOKE_LOG_LEVEL", "INFO"),
    }.items():
        args += ["-e", f"{key}={value}"]
    if data is not None:
        args += ["-v", f"{data}:/data"]
    return args


async def run_checks(engine: Engine, image: str, workdir: Path) -> dict[str, float]:
    """The running-container checks; return the figures measured.

    Engine commands run in threads: the emulator and the simulator live on this event loop,
    and a container stopping still talks to them (a last getUpdates).
    """
    figures: dict[str, float] = {}
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    sim.add_task(SimTask(7, "smoke-test campaign", TaskStatus.PENDING))
    data = workdir / "data"
    data.mkdir()
    os.chown(data, int(UID), int(UID))  # the README's rule for a bind mount on /data
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        port = free_port()
        name = f"smsc-smoke-{os.getpid()}-main"
        started = time.monotonic()
        await asyncio.to_thread(engine.start, image, name, bot_args(emu.url, sim_url, port, data))
        await wait_healthy(port, engine, name)
        figures["start_to_healthz_s"] = time.monotonic() - started
        say(f"/healthz 200 after {figures['start_to_healthz_s']:.1f} s")
        if engine.podman:
            check = await asyncio.to_thread(engine.run, "healthcheck", "run", name, check=False)
            if check.returncode != 0:
                raise SmokeFailure(f"the HEALTHCHECK failed: {check.stdout}{check.stderr}")
            say("HEALTHCHECK (podman healthcheck run): healthy")
        await emu.wait_until(lambda: emu.active_polls > 0, timeout=30)
        emu.send_message(ADMIN_CHAT, "/tasks")
        reply = await emu.wait_for("sendMessage", timeout=30)
        if "smoke-test campaign" not in reply[0].params["text"]:
            raise SmokeFailure(f"/tasks answered without the task: {reply[0].params['text']!r}")
        say("/tasks answered end to end (emulator -> bot in the container -> simulator)")
        db = data / "bot.sqlite3"
        if not db.exists() or str(db.stat().st_uid) != UID:
            raise SmokeFailure(f"no database owned by uid {UID} in the /data bind mount")
        say(f"database in the /data bind mount, owned by uid {UID}")
        code, elapsed = await asyncio.to_thread(engine.stop, name)
        figures["stop_late_s"] = elapsed
        log = await asyncio.to_thread(engine.logs, name)
        if code != 0 or elapsed >= STOP_LIMIT:
            raise SmokeFailure(f"SIGTERM while running: exit {code} after {elapsed:.1f} s\n{log}")
        if "bot stopped" not in log:
            raise SmokeFailure(f"no 'bot stopped' in the log after SIGTERM:\n{log[-3000:]}")
        assert_clean_log(log, "running container")
        say(f"SIGTERM while running: exit {code} in {elapsed:.2f} s")

        await check_early_stops(engine, image, emu.url, sim_url, figures)
    await check_demo(engine, image, figures)
    return figures


async def check_demo(engine: Engine, image: str, figures: dict[str, float]) -> None:
    """The playground from the image (README): the page and its API answer; SIGTERM exits 0."""
    port = free_port()
    name = f"smsc-smoke-{os.getpid()}-demo"
    command = ["python", "-m", "bot", "demo", "--host", "127.0.0.1", "--port", str(port)]
    started = time.monotonic()
    await asyncio.to_thread(engine.start, image, name, [], command)
    deadline = started + START_LIMIT
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while True:
            if not await asyncio.to_thread(engine.running, name):
                log = await asyncio.to_thread(engine.logs, name)
                raise SmokeFailure(f"the demo container exited before its page:\n{log[-3000:]}")
            try:
                async with http.get(f"{base}/") as page, http.get(f"{base}/api/state") as state:
                    if page.status == 200 and state.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SmokeFailure(f"the demo's page never answered within {START_LIMIT:.0f} s")
            await asyncio.sleep(0.5)
    figures["demo_page_s"] = time.monotonic() - started
    say(f"demo from the image: page and /api/state up after {figures['demo_page_s']:.1f} s")
    code, elapsed = await asyncio.to_thread(engine.stop, name)
    log = await asyncio.to_thread(engine.logs, name)
    if code != 0 or elapsed >= STOP_LIMIT:
        raise SmokeFailure(f"demo SIGTERM: exit {code} after {elapsed:.1f} s\n{log[-3000:]}")
    say(f"demo SIGTERM: exit {code} in {elapsed:.2f} s")


async def check_early_stops(
    engine: Engine, image: str, emu_url: str, sim_url: str, figures: dict[str, float]
) -> None:
    """SIGTERM at several moments of the start: exit 0 within 10 s every time."""
    for delay in EARLY_DELAYS:
        early = f"smsc-smoke-{os.getpid()}-early-{int(delay * 1000)}"
        early_args = bot_args(emu_url, sim_url, free_port(), None)
        await asyncio.to_thread(engine.start, image, early, early_args)
        await asyncio.sleep(delay)
        code, elapsed = await asyncio.to_thread(engine.stop, early)
        log = await asyncio.to_thread(engine.logs, early)
        figures[f"stop_early_{delay:.1f}s_s"] = elapsed
        if code != 0 or elapsed >= STOP_LIMIT:
            raise SmokeFailure(
                f"SIGTERM {delay:.1f} s after start: exit {code} after {elapsed:.1f} s "
                f"(a lost signal waits for the SIGKILL: 137)\n{log[-3000:]}"
            )
        assert_no_secret(log, f"SIGTERM {delay:.1f} s after start")
        say(f"SIGTERM {delay:.1f} s after start: exit {code} in {elapsed:.2f} s")
        if "Traceback" in log:
            # Seen rarely: a stop during the start hook (exit 0, in time) leaves "Exception
            # ignored ... Event loop is closed" from a pending coroutine. Shown, not failed:
            # the stop contract (exit 0 within 10 s) held.
            say(f"WARNING: a traceback in the log of that stop:\n{log[-3000:]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke test; 0 passed, 1 failed, 3 skipped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["podman", "docker"])
    parser.add_argument("--image", default="smsc-tasks-bot:smoke")
    parser.add_argument("--no-build", action="store_true", help="use --image as it is")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        engine = pick_engine(args.engine)
    except SmokeSkip as skip:
        print(f"smoke: SKIPPED: no container engine works here: {skip}", flush=True)
        return EXIT_SKIPPED
    say(f"engine: {engine.name}")
    try:
        if not args.no_build:
            build_s = engine.build(args.image)
            say(f"image {args.image} built in {build_s:.1f} s")
        with tempfile.TemporaryDirectory(prefix="smsc-smoke-") as tmp:
            check_image(engine, args.image)
            figures = asyncio.run(run_checks(engine, args.image, Path(tmp)))
    except (SmokeFailure, subprocess.TimeoutExpired, TimeoutError) as err:
        print(f"smoke: FAILED: {err}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    finally:
        engine.cleanup()
    early = [v for k, v in figures.items() if k.startswith("stop_early")]
    say(
        f"passed in {time.monotonic() - started:.0f} s; stop times: late "
        f"{figures['stop_late_s']:.2f} s, early max {max(early):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
