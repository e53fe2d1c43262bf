"""The build stage: a static Go binary in a `FROM scratch` image, pushed to the registry.

Release versions are immutable: `go-coffee/<service>:<version>` is pushed once. Every
image carries the label `io.brewline.source-digest`, a digest of exactly what it was
built from (see `ImageActivities.source_digest`), so a retried or repeated build of
the same version and source is skipped, and the same version built from other source
is refused instead of overwriting what may already run in production.

Where it goes: `BuildInput.repository` "" is the local platform's registry
(`<registry>/go-coffee/<service>`, plain HTTP); an ECR repository URL pushes to ECR with
the credentials of an ECR authorization token, and the skip check asks ECR's
`DescribeImages` for the tag first (ECR tags are immutable); any other `host[:port]/path`
is pushed as is (HTTP for a loopback host, else HTTPS with buildah's own credentials).

Files per release and service, in `settings.release_dir(release_id)/<service>/`:
`go-list.log`, `go-build.log`, `buildah.log`, `image.digest` and `context/` (the build
context: only the binary, named after the service). The ECR credentials go to buildah in
an auth file created 0600 in a private temporary folder and deleted right after the push:
never on argv, never in a log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ecr import (
    EcrAuthorization,
    EcrClient,
    EcrRepository,
    is_ecr_repository,
    parse_ecr_repository,
)
from activities.golang import build_static_binary, go_env
from activities.registry import RegistryClient, RegistryError
from activities.runner import run
from brewline.model import BuildInput, ImageRecord
from brewline.platform import PlatformSettings, container_env, container_storage_args, tool_path

IMAGE_PROJECT = "go-coffee"
SOURCE_DIGEST_LABEL = "io.brewline.source-digest"
SERVICE_LABEL = "io.brewline.service"
VERSION_LABEL = "org.opencontainers.image.version"
BUILDAH_TIMEOUT = 600.0
GO_LIST_TIMEOUT = 120.0

# what a registry accepts as a tag, and as one path component of a repository name
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_REGISTRY_HOST = re.compile(
    r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$"
)
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# one line per non-standard package, marked so the runner's `$ argv` line never matches
_LIST_MARK = "@brewline-pkg"
_LIST_TEMPLATE = (
    "{{if not .Standard}}" + _LIST_MARK + '\t{{.Dir}}\t{{join .GoFiles "\\t"}}'
    '\t{{join .SFiles "\\t"}}\t{{join .EmbedFiles "\\t"}}{{end}}'
)


class ImagePushFailed(Exception):
    """buildah could not push the image (registry down, disk full...). Retryable."""


@dataclass(frozen=True)
class PushTarget:
    """Where one build goes: the name images carry, and where the bytes travel."""

    repository: str  # the image name without tag: <registry>/<path>
    transfer: str  # host[:port] buildah and the registry client talk to
    path: str  # the repository inside the registry
    scheme: str  # of the registry API at `transfer`: http or https
    ecr: EcrRepository | None = None

    @property
    def tls_verify(self) -> bool:
        return self.scheme == "https"


class ImageActivities:
    """`build_image`: build once per (service, version), push, and report the digest.

    `registry` reads the local registry (default: the platform's). For ECR, `ecr` is the
    API client (default: one on `ecr_endpoint_url`, AWS's own endpoint when None), and
    `ecr_registry_override` (host:port, plain HTTP) replaces every ECR registry host for
    the bytes: a loopback registry standing in for ECR, since moto has no byte store.
    """

    def __init__(
        self,
        settings: PlatformSettings,
        go: str | None = None,
        buildah: str = "buildah",
        registry: RegistryClient | None = None,
        *,
        ecr: EcrClient | None = None,
        ecr_endpoint_url: str | None = None,
        ecr_registry_override: str | None = None,
    ) -> None:
        self.settings = settings
        self.go = go
        self.buildah = buildah
        self.registry = registry or RegistryClient(settings.registry_address)
        self.ecr = ecr or EcrClient(ecr_endpoint_url)
        self.ecr_registry_override = ecr_registry_override

    @activity.defn(name="build_image")
    async def build_image(self, input: BuildInput) -> ImageRecord:
        """Build and push `<repository>:<version>`, or skip it if already pushed.

        The repository is `input.repository`, or `<registry>/go-coffee/<service>` on the
        local platform. Skipped (no build) when the tag exists with the same source
        digest; a tag pushed from a different source is an `ImageTagConflict` (bump the
        version).
        """
        _check_names(input)
        target = self.push_target(input)
        module_dir = Path(input.source) / input.go_module
        containerfile = module_dir / input.containerfile
        _check_paths(input, module_dir, containerfile)
        work = self.settings.release_dir(input.release_id) / input.service
        work.mkdir(parents=True, exist_ok=True)

        source_digest = await self.source_digest(input, work / "go-list.log")
        existing = await self._existing(target, input, source_digest)
        if existing is not None:
            return existing

        context = work / "context"
        await asyncio.to_thread(_fresh_dir, context)
        await build_static_binary(
            input.source,
            input.go_module,
            input.package,
            input.version,
            context / input.service,
            work / "go-build.log",
            settings=self.settings,
            go=self.go,
        )
        tag = f"{target.repository}:{input.version}"
        buildah = [self.buildah, *container_storage_args(self.settings)]
        env = container_env(self.settings)
        log = work / "buildah.log"
        built = await run(
            [
                *buildah,
                "bud",
                "--isolation",
                "chroot",
                "--layers=false",
                "-f",
                str(containerfile),
                "--label",
                f"{SOURCE_DIGEST_LABEL}={source_digest}",
                "--label",
                f"{VERSION_LABEL}={input.version}",
                "--label",
                f"{SERVICE_LABEL}={input.service}",
                "-t",
                tag,
                str(context),
            ],
            log_path=log,
            env=env,
            timeout=BUILDAH_TIMEOUT,
        )
        if not built.ok:
            raise ApplicationError(
                f"buildah could not build {tag} from {containerfile} (log {log}):\n"
                + built.tail_text(),
                type="BuildFailed",
                non_retryable=True,
            )
        digest_file = work / "image.digest"
        digest_file.unlink(missing_ok=True)
        authorization = await self.ecr.get_authorization_token(target.ecr) if target.ecr else None
        destination = f"docker://{target.transfer}/{target.path}:{input.version}"
        with _auth_file(target.transfer, authorization) as auth_args:
            pushed = await run(
                [
                    *buildah,
                    "push",
                    f"--tls-verify={str(target.tls_verify).lower()}",
                    *auth_args,
                    "--digestfile",
                    str(digest_file),
                    tag,
                    destination,
                ],
                log_path=log,
                env=env,
                timeout=BUILDAH_TIMEOUT,
            )
        if not pushed.ok:
            hint = (
                "is it up (`python -m local.platform up`)?"
                if not input.repository
                else "can this worker reach it, with push rights?"
            )
            raise ImagePushFailed(
                f"buildah could not push {tag} to the registry {target.transfer} (log {log}); "
                f"{hint} The activity retries:\n" + pushed.tail_text(8)
            )
        digest = digest_file.read_text().strip()
        # the registry now holds it; the local copy only costs vfs disk space
        await run([*buildah, "rmi", tag], log_path=log, env=env, timeout=BUILDAH_TIMEOUT)
        return ImageRecord(
            service=input.service,
            version=input.version,
            image=f"{target.repository}@{digest}",
            digest=digest,
            source_digest=source_digest,
        )

    def push_target(self, input: BuildInput) -> PushTarget:
        """Where `input` is pushed: the local registry, an ECR repository or another one."""
        if not input.repository:
            local = self.settings.registry_address
            path = f"{IMAGE_PROJECT}/{input.service}"
            return PushTarget(f"{local}/{path}", local, path, "http")
        if is_ecr_repository(input.repository):
            ecr = parse_ecr_repository(input.repository)
            override = self.ecr_registry_override
            return PushTarget(
                ecr.url,
                override or ecr.registry,
                ecr.name,
                "http" if override else "https",
                ecr=ecr,
            )
        host, path = _split_repository(input.repository)
        loopback = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        scheme = "http" if loopback in _LOOPBACK_HOSTS else "https"
        return PushTarget(f"{host}/{path}", host, path, scheme)

    async def source_digest(self, input: BuildInput, log_path: Path) -> str:
        """sha256 over exactly what goes into the image; the label that makes skips safe.

        The rule: the files of every package the service's binary is compiled from that
        lie inside the Go module, as `go list -deps` reports them with the build's own
        settings (CGO_ENABLED=0, so cgo files do not count): `GoFiles`, `SFiles` and
        `EmbedFiles` (test files are not compiled in; GOOS=linux); plus the module's `go.mod` and
        `go.sum` (which pin dependencies outside the module), the Containerfile, the Go
        package path and the version string (stamped into the binary with -X).
        Other services' folders, tests and docs do not count, so changing one service
        does not change the digest of another. Paths are relative to the module with
        `/` separators, sorted; each file is hashed as its path, size and bytes. The Go
        toolchain's version is not part of it: the toolchain is pinned by the project.
        """
        module_dir = (Path(input.source) / input.go_module).resolve()
        files = await self._package_files(input, module_dir, log_path)
        files |= {
            module_dir / name for name in ("go.mod", "go.sum") if (module_dir / name).is_file()
        }
        files.add((module_dir / input.containerfile).resolve())
        return await asyncio.to_thread(
            _digest_files, module_dir, files, input.package, input.version
        )

    # ---- steps -------------------------------------------------------------------------
    async def _existing(
        self, target: PushTarget, input: BuildInput, source_digest: str
    ) -> ImageRecord | None:
        """The record of an already pushed `repository:version` built from this source."""
        if target.ecr is not None:
            # ECR's API says whether the tag exists; the labels live in the image config,
            # read through the registry API with the token
            ecr_digest = await self.ecr.describe_images(target.ecr, input.version)
            if ecr_digest is None:
                return None
            token = await self.ecr.get_authorization_token(target.ecr)
            client = RegistryClient(
                target.transfer, scheme=target.scheme, auth=(token.user, token.password)
            )
            found = await asyncio.to_thread(client.image, target.path, ecr_digest)
            if found is None:
                raise RegistryError(
                    f"ECR lists {target.repository}:{input.version} as {ecr_digest} but its "
                    f"registry {target.transfer} has no such manifest; the activity retries"
                )
        else:
            registry = (
                self.registry
                if not input.repository
                else RegistryClient(target.transfer, scheme=target.scheme)
            )
            found = await asyncio.to_thread(registry.image, target.path, input.version)
            if found is None:
                return None
        pushed_from = found.labels.get(SOURCE_DIGEST_LABEL, "<no source digest label>")
        if pushed_from != source_digest:
            immutable = (
                "ECR tags are IMMUTABLE (the repository refuses to overwrite a tag) and "
                if target.ecr
                else ""
            )
            raise ApplicationError(
                f"version {input.version} of service {input.service} was already pushed to "
                f"{target.repository} ({found.digest}) from different source "
                f"({pushed_from}, now {source_digest}); {immutable}release versions are "
                "immutable: bump the version",
                type="ImageTagConflict",
                non_retryable=True,
            )
        activity.logger.info(
            "%s:%s already pushed from this source; build skipped",
            target.repository,
            input.version,
        )
        return ImageRecord(
            service=input.service,
            version=input.version,
            image=f"{target.repository}@{found.digest}",
            digest=found.digest,
            source_digest=source_digest,
            skipped=True,
        )

    async def _package_files(
        self, input: BuildInput, module_dir: Path, log_path: Path
    ) -> set[Path]:
        go = self.go or tool_path("go", "BREWLINE_GO")
        # the runner appends; this log must hold one run
        await asyncio.to_thread(log_path.unlink, missing_ok=True)
        listed = await run(
            [go, "list", "-deps", "-f", _LIST_TEMPLATE, input.package],
            log_path=log_path,
            cwd=module_dir,
            env=self._go_env(),
            timeout=GO_LIST_TIMEOUT,
        )
        if not listed.ok:
            raise ApplicationError(
                f"go list could not load package {input.package} of service {input.service} "
                f"in {module_dir} (log {log_path}):\n" + listed.tail_text(),
                type="BuildFailed",
                non_retryable=True,
            )
        text = await asyncio.to_thread(log_path.read_text)
        files = await asyncio.to_thread(_listed_files, text, module_dir)
        if not files:
            raise ApplicationError(
                f"go list found no Go files for package {input.package} of service "
                f"{input.service} in {module_dir} (log {log_path}); check its `package`",
                type="BuildFailed",
                non_retryable=True,
            )
        return files

    def _go_env(self) -> dict[str, str]:
        # exactly the static build's settings: they decide which files are compiled
        env = go_env(self.settings.home_path, cgo=False)
        env["GOOS"] = "linux"
        return env


# ---- helpers ---------------------------------------------------------------------------
def _check_names(input: BuildInput) -> None:
    if not _TAG.fullmatch(input.version):
        raise ApplicationError(
            f"version {input.version!r} of service {input.service} is not a valid image tag "
            "(letters, digits, '_', '.', '-'; at most 128; e.g. 1.4.0); use another version",
            type="InvalidVersion",
            non_retryable=True,
        )
    if not _REPO_COMPONENT.fullmatch(input.service):
        raise ApplicationError(
            f"service name {input.service!r} cannot be an image repository name (lowercase "
            "letters and digits, separated by '.', '_' or '-'); rename it in pipeline.yaml",
            type="InvalidConfig",
            non_retryable=True,
        )


def _check_paths(input: BuildInput, module_dir: Path, containerfile: Path) -> None:
    if not (module_dir / "go.mod").is_file():
        raise ApplicationError(
            f"no go.mod in {module_dir}: check go_module ({input.go_module!r}) in pipeline.yaml",
            type="InvalidConfig",
            non_retryable=True,
        )
    if not containerfile.is_file():
        raise ApplicationError(
            f"Containerfile {containerfile} of service {input.service} does not exist; check "
            f"its containerfile ({input.containerfile!r}, relative to the Go module)",
            type="InvalidConfig",
            non_retryable=True,
        )


def _split_repository(repository: str) -> tuple[str, str]:
    """`host[:port]/path` -> (host[:port], path), or an InvalidConfig naming the value."""
    host, slash, path = repository.partition("/")
    problem = None
    if "://" in repository:
        problem = "it has a scheme; give host[:port]/path"
    elif not slash or not _REGISTRY_HOST.match(host):
        problem = "it does not start with a registry host[:port]"
    elif "." not in host and ":" not in host and host != "localhost":
        # the registry rule: a first component without '.' or ':' is a path, not a host
        problem = f"{host!r} is not a registry host (no '.' or port)"
    elif not all(_REPO_COMPONENT.fullmatch(part) for part in path.split("/")):
        problem = (
            f"the path {path!r} is not a repository name (lowercase components separated "
            "by '/'; no tag or digest)"
        )
    if problem:
        raise ApplicationError(
            f"repository {repository!r} cannot be pushed to: {problem}; write a full "
            "repository such as registry.example.com:5000/go-coffee/api-gateway or an ECR "
            "repository URL",
            type="InvalidConfig",
            non_retryable=True,
        )
    return host, path


@contextlib.contextmanager
def _auth_file(registry: str, authorization: EcrAuthorization | None) -> Iterator[list[str]]:
    """buildah's `--authfile` argument for `registry`, deleted when the block ends.

    The file is created 0600 inside a 0700 folder of its own, so only this user can read
    it while it exists; the credentials never reach argv or a log.
    """
    if authorization is None:
        yield []
        return
    folder = tempfile.mkdtemp(prefix="brewline-auth-")  # 0700
    try:
        path = os.path.join(folder, "auth.json")
        secret = f"{authorization.user}:{authorization.password}".encode()
        document = {"auths": {registry: {"auth": base64.b64encode(secret).decode()}}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        yield ["--authfile", path]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fresh_dir(path: Path) -> None:
    """An empty folder: the build context holds the binary and nothing left over."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def _listed_files(go_list_output: str, module_dir: Path) -> set[Path]:
    """The compiled files of the listed packages that lie inside the module."""
    files: set[Path] = set()
    for line in go_list_output.splitlines():
        if not line.startswith(_LIST_MARK + "\t"):
            continue
        _, folder, *names = line.split("\t")
        package_dir = Path(folder).resolve()
        if package_dir.is_relative_to(module_dir):  # others' modules are pinned by go.sum
            files.update(package_dir / name for name in names if name)
    return files


def _digest_files(module_dir: Path, files: set[Path], package: str, version: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"brewline source digest v1\npackage {package}\nversion {version}\n".encode())
    for rel in sorted(path.relative_to(module_dir).as_posix() for path in files):
        data = (module_dir / rel).read_bytes()
        digest.update(f"file {rel} {len(data)}\n".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()
