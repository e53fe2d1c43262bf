"""build_image with the real go, buildah, docker-registry and podman on a tiny Go module."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.images import SOURCE_DIGEST_LABEL, ImageActivities, ImagePushFailed
from activities.registry import RegistryClient, RegistryUnavailable
from brewline.model import BuildInput
from brewline.platform import PlatformSettings, container_env, container_storage_args

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "buildmod"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree of our own: the tests edit it."""
    shutil.copytree(FIXTURE, tmp_path / "src" / "buildmod")
    return tmp_path / "src"


def unique_version() -> str:
    return f"1.0.0-{uuid.uuid4().hex[:8]}"


def build_input(source: Path, version: str, release_id: str | None = None) -> BuildInput:
    return BuildInput(
        release_id=release_id or f"r-{uuid.uuid4().hex[:8]}",
        service="hello",
        version=version,
        source=str(source),
        go_module="buildmod",
        package="./hello",
        containerfile="hello/Containerfile",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get_eventually(url: str, deadline_s: float = 20.0) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                return response.read().decode()
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def test_build_push_skip_run_and_conflict(
    registry_settings: PlatformSettings, source: Path
) -> None:
    settings = registry_settings
    version = unique_version()
    first_input = build_input(source, version)

    record = await ActivityEnvironment().run(ImageActivities(settings).build_image, first_input)

    assert not record.skipped
    repository = f"{settings.registry_address}/go-coffee/hello"
    assert record.image == f"{repository}@{record.digest}"
    assert record.digest.startswith("sha256:") and len(record.digest) == 71
    assert record.source_digest.startswith("sha256:")
    registry = RegistryClient(settings.registry_address)
    pushed = registry.manifest("go-coffee/hello", version)
    assert pushed is not None and pushed.digest == record.digest  # Docker-Content-Digest
    image = registry.image("go-coffee/hello", version)
    assert image is not None
    assert image.labels[SOURCE_DIGEST_LABEL] == record.source_digest
    assert image.labels["org.opencontainers.image.version"] == version
    assert image.labels["io.brewline.service"] == "hello"
    context = settings.release_dir(first_input.release_id) / "hello" / "context"
    assert [p.name for p in context.iterdir()] == ["hello"]

    # Same version, same source: skipped. An ImageActivities whose buildah does not
    # exist proves that nothing was built or pushed.
    again_input = build_input(source, version)
    no_buildah = ImageActivities(settings, buildah="/nonexistent/buildah")
    again = await ActivityEnvironment().run(no_buildah.build_image, again_input)
    assert again.skipped
    assert (again.digest, again.image, again.source_digest) == (
        record.digest,
        record.image,
        record.source_digest,
    )
    assert not (settings.release_dir(again_input.release_id) / "hello" / "buildah.log").exists()

    # The image runs (pulled back from the registry by digest) and answers its version.
    port = free_port()
    podman = ["podman", *container_storage_args(settings)]
    started = subprocess.run(
        [
            *podman,
            "run",
            "-d",
            "--runtime",
            "/usr/sbin/runc",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--network",
            "host",
            "--tls-verify=false",
            "-e",
            f"PORT={port}",
            record.image,
        ],
        env=container_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip().splitlines()[-1]
    try:
        assert http_get_eventually(f"http://127.0.0.1:{port}/") == f"hello {version}\n"
    finally:
        subprocess.run(
            [*podman, "rm", "-f", container],
            env=container_env(settings),
            capture_output=True,
            timeout=60,
            check=False,
        )

    # Changed source, same version: refused, the pushed image stays as it was.
    greet = source / "buildmod" / "internal" / "greet" / "greet.go"
    greet.write_text(greet.read_text().replace('" "', '" v"'))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            ImageActivities(settings).build_image, build_input(source, version)
        )
    assert err.value.type == "ImageTagConflict" and err.value.non_retryable
    assert f"version {version} of service hello" in str(err.value)
    assert "bump the version" in str(err.value)
    still = registry.manifest("go-coffee/hello", version)
    assert still is not None and still.digest == record.digest


async def test_source_digest_rule(source: Path, tmp_path: Path) -> None:
    acts = ImageActivities(PlatformSettings(home=str(tmp_path / "home")))
    module = source / "buildmod"
    log = tmp_path / "go-list.log"

    async def digest(version: str = "1.0.0") -> str:
        return await acts.source_digest(build_input(source, version), log)

    base = await digest()
    assert base == await digest()  # stable

    # not compiled into hello: another service, hello's tests
    (module / "other" / "main.go").write_text("package main\n\nfunc main() {}\n")
    (module / "hello" / "main_test.go").write_text("package main\n")
    (module / "README.md").write_text("docs\n")
    assert await digest() == base

    assert await digest("1.0.1") != base  # the version is stamped into the binary
    changed = []
    for path in (
        module / "internal" / "greet" / "greet.go",  # a shared package hello imports
        module / "hello" / "Containerfile",
        module / "go.mod",
    ):
        path.write_text(path.read_text() + ("\n// changed\n" if path.suffix == ".go" else "\n"))
        changed.append(await digest())
    assert len({base, *changed}) == 4


async def test_registry_down_is_retryable(source: Path, tmp_path: Path) -> None:
    settings = PlatformSettings(home=str(tmp_path / "home"), registry_port=free_port())
    with pytest.raises(RegistryUnavailable) as err:
        await ActivityEnvironment().run(
            ImageActivities(settings).build_image, build_input(source, "1.0.0")
        )
    assert settings.registry_address in str(err.value)
    assert "not answering" in str(err.value)


async def test_push_failure_is_retryable(
    registry_settings: PlatformSettings, source: Path, tmp_path: Path
) -> None:
    # the tag check asks the live registry; the push goes to a port where nothing listens
    dead = PlatformSettings(home=registry_settings.home, registry_port=free_port())
    acts = ImageActivities(dead, registry=RegistryClient(registry_settings.registry_address))
    with pytest.raises(ImagePushFailed) as err:
        await ActivityEnvironment().run(acts.build_image, build_input(source, unique_version()))
    assert dead.registry_address in str(err.value)
    assert "retries" in str(err.value)


async def test_bad_containerfile_and_version_are_non_retryable(
    registry_settings: PlatformSettings, source: Path
) -> None:
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            ImageActivities(registry_settings).build_image, build_input(source, "1.0.0+build")
        )
    assert err.value.type == "InvalidVersion" and err.value.non_retryable

    containerfile = source / "buildmod" / "hello" / "Containerfile"
    containerfile.write_text("FROM scratch\nCOPY missing-file /x\n")
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            ImageActivities(registry_settings).build_image,
            build_input(source, unique_version()),
        )
    assert err.value.type == "BuildFailed" and err.value.non_retryable
    assert "buildah.log" in str(err.value)


async def test_build_to_another_repository(
    registry_settings: PlatformSettings, source: Path
) -> None:
    # a full host:port/path repository (here the same loopback registry, plain HTTP)
    path = f"team/hello-{uuid.uuid4().hex[:6]}"
    version = unique_version()
    first = build_input(source, version)
    first.repository = f"127.0.0.1:{registry_settings.registry_port}/{path}"

    record = await ActivityEnvironment().run(ImageActivities(registry_settings).build_image, first)

    assert not record.skipped and record.image == f"{first.repository}@{record.digest}"
    pushed = RegistryClient(registry_settings.registry_address).manifest(path, version)
    assert pushed is not None and pushed.digest == record.digest
    again = build_input(source, version)
    again.repository = first.repository
    no_buildah = ImageActivities(registry_settings, buildah="/nonexistent/buildah")
    skipped = await ActivityEnvironment().run(no_buildah.build_image, again)
    assert skipped.skipped and skipped.image == record.image
