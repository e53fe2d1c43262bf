"""The build stage: a static Go binary in a `FROM scratch` image, pushed to the registry.

Release versions are immutable: `go-coffee/<service>:<version>` is pushed once. Every
image carries the label `io.brewline.source-digest`, a digest of exactly what it was
built from (see `ImageActivities.source_digest`), so a retried or repeated build of
the same version and source is skipped, and the same version built from other source
is refused instead of overwriting what may already run in production.

Files per release and service, in `settings.release_dir(release_id)/<service>/`:
`go-list.log`, `go-build.log`, `buildah.log`, `image.digest` and `context/` (the build
context: only the binary, named after the service).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.golang import build_static_binary, go_env
from activities.registry import RegistryClient
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
# one line per non-standard package, marked so the runner's `$ argv` line never matches
_LIST_MARK = "@brewline-pkg"
_LIST_TEMPLATE = (
    "{{if not .Standard}}" + _LIST_MARK + '\t{{.Dir}}\t{{join .GoFiles "\\t"}}'
    '\t{{join .SFiles "\\t"}}\t{{join .EmbedFiles "\\t"}}{{end}}'
)


class ImagePushFailed(Exception):
    """buildah could not push the image (registry down, disk full...). Retryable."""


class ImageActivities:
    """`build_image`: build once per (service, version), push, and report the digest."""

    def __init__(
        self,
        settings: PlatformSettings,
        go: str | None = None,
        buildah: str = "buildah",
        registry: RegistryClient | None = None,
    ) -> None:
        self.settings = settings
        self.go = go
        self.buildah = buildah
        self.registry = registry or RegistryClient(settings.registry_address)

    @activity.defn(name="build_image")
    async def build_image(self, input: BuildInput) -> ImageRecord:
        """Build and push `<registry>/go-coffee/<service>:<version>`, or skip it if pushed.

        Skipped (no build) when the tag exists with the same source digest; a tag
        pushed from a different source is an `ImageTagConflict` (bump the version).
        """
        _check_names(input)
        module_dir = Path(input.source) / input.go_module
        containerfile = module_dir / input.containerfile
        _check_paths(input, module_dir, containerfile)
        work = self.settings.release_dir(input.release_id) / input.service
        work.mkdir(parents=True, exist_ok=True)

        source_digest = await self.source_digest(input, work / "go-list.log")
        repository = f"{IMAGE_PROJECT}/{input.service}"
        registry = self.settings.registry_address
        existing = await self._existing(repository, input, source_digest)
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
        tag = f"{registry}/{repository}:{input.version}"
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
        pushed = await run(
            [*buildah, "push", "--tls-verify=false", "--digestfile", str(digest_file), tag],
            log_path=log,
            env=env,
            timeout=BUILDAH_TIMEOUT,
        )
        if not pushed.ok:
            raise ImagePushFailed(
                f"buildah could not push {tag} to the registry {registry} (log {log}); is it "
                f"up (`python -m local.platform up`)? The activity retries:\n" + pushed.tail_text(8)
            )
        digest = digest_file.read_text().strip()
        # the registry now holds it; the local copy only costs vfs disk space
        await run([*buildah, "rmi", tag], log_path=log, env=env, timeout=BUILDAH_TIMEOUT)
        return ImageRecord(
            service=input.service,
            version=input.version,
            image=f"{registry}/{repository}@{digest}",
            digest=digest,
            source_digest=source_digest,
        )

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
        self, repository: str, input: BuildInput, source_digest: str
    ) -> ImageRecord | None:
        """The record of an already pushed `repository:version` built from this source."""
        found = await asyncio.to_thread(self.registry.image, repository, input.version)
        if found is None:
            return None
        pushed_from = found.labels.get(SOURCE_DIGEST_LABEL, "<no source digest label>")
        if pushed_from != source_digest:
            raise ApplicationError(
                f"version {input.version} of service {input.service} was already pushed to "
                f"{self.settings.registry_address}/{repository} from different source "
                f"({pushed_from}, now {source_digest}); release versions are immutable: "
                "bump the version",
                type="ImageTagConflict",
                non_retryable=True,
            )
        activity.logger.info(
            "%s:%s already pushed from this source; build skipped", repository, input.version
        )
        return ImageRecord(
            service=input.service,
            version=input.version,
            image=f"{self.settings.registry_address}/{repository}@{found.digest}",
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
    if not _TAG.match(input.version):
        raise ApplicationError(
            f"version {input.version!r} of service {input.service} is not a valid image tag "
            "(letters, digits, '_', '.', '-'; at most 128; e.g. 1.4.0); use another version",
            type="InvalidVersion",
            non_retryable=True,
        )
    if not _REPO_COMPONENT.match(input.service):
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
