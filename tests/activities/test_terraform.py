"""terraform_plan / terraform_apply with the real terraform, offline, on the local backend.

The configuration is tests/activities/testdata/terraform-offline (terraform_data only,
what envs/local was before it used the AWS provider): these tests are about the
activity (plan hash, apply markers, stale plans, the lock, error mapping) and run in
seconds. envs/local itself, against a real moto server: test_terraform_moto.py.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.terraform import (
    TerraformActivities,
    TerraformStateLocked,
    _backend_type,
    state_path,
)
from brewline.model import (
    TerraformApplyInput,
    TerraformPlanInput,
    TerraformPlanResult,
)
from brewline.platform import REPO_ROOT, PlatformSettings

CONFIG = REPO_ROOT / "tests" / "activities" / "testdata" / "terraform-offline"
TF_DIR = "infra/offline"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree holding only a copy of the offline configuration."""
    src = tmp_path / "src"
    shutil.copytree(CONFIG, src / TF_DIR)
    return src


@pytest.fixture
def settings(tmp_path: Path) -> PlatformSettings:
    return PlatformSettings(home=str(tmp_path / "home"), registry_port=5999)


@pytest.fixture
def acts(settings: PlatformSettings) -> TerraformActivities:
    return TerraformActivities(settings)


def variables(version: str, *, json_lists: bool = False) -> dict[str, str]:
    """The release workflow's variables: lists comma-joined (or as JSON lists)."""
    services, environments = ["api-gateway", "producer"], ["staging", "production"]
    encode = json.dumps if json_lists else ",".join
    return {
        "release_version": version,
        "services": encode(services),
        "environments": encode(environments),
    }


async def plan(
    acts: TerraformActivities, source: Path, version: str, *, json_lists: bool = False
) -> TerraformPlanResult:
    return await ActivityEnvironment().run(
        acts.terraform_plan,
        TerraformPlanInput(
            release_id=f"r-{uuid.uuid4().hex[:8]}",
            source=str(source),
            terraform_dir=TF_DIR,
            variables=variables(version, json_lists=json_lists),
        ),
    )


def apply_input(source: Path, planned: TerraformPlanResult) -> TerraformApplyInput:
    return TerraformApplyInput(
        release_id="r-apply",
        source=str(source),
        terraform_dir=TF_DIR,
        plan_file=planned.plan_file,
        plan_sha256=planned.plan_sha256,
    )


async def test_first_plan_creates_apply_then_no_changes(
    acts: TerraformActivities, source: Path, settings: PlatformSettings
) -> None:
    first = await plan(acts, source, "1.0.0")
    assert (first.add, first.change, first.destroy) == (3, 0, 0)
    assert sorted(c.address for c in first.resource_changes) == [
        'terraform_data.environment["production"]',
        'terraform_data.environment["staging"]',
        "terraform_data.release",
    ]
    assert all(c.actions == ["create"] for c in first.resource_changes)
    assert Path(first.plan_file).is_file() and len(first.plan_sha256) == 64

    applied = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, first))
    assert applied.applied
    assert applied.outputs["registry"] == "127.0.0.1:5999"
    assert applied.outputs["release_version"] == "1.0.0"
    assert applied.outputs["image_repository"] == "127.0.0.1:5999/go-coffee"
    assert json.loads(applied.outputs["environments"]) == {
        "production": settings.entrypoint_url("production"),
        "staging": settings.entrypoint_url("staging"),
    }

    second = await plan(acts, source, "1.0.0")
    assert (second.add, second.change, second.destroy) == (0, 0, 0)
    assert all(c.actions == ["no-op"] for c in second.resource_changes)
    nothing = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, second))
    assert not nothing.applied
    assert nothing.outputs == applied.outputs

    # state and .terraform live in the platform's home, never in the source tree
    assert state_path(settings, TF_DIR).is_file()
    assert sorted(p.name for p in (source / TF_DIR).iterdir()) == sorted(
        p.name for p in CONFIG.iterdir()
    )


async def test_version_change_is_one_in_place_update(
    acts: TerraformActivities, source: Path
) -> None:
    first = await plan(acts, source, "1.0.0")
    await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, first))

    bumped = await plan(acts, source, "1.1.0")
    assert (bumped.add, bumped.change, bumped.destroy) == (0, 1, 0)
    changed = [c for c in bumped.resource_changes if c.actions != ["no-op"]]
    assert [(c.address, c.actions) for c in changed] == [("terraform_data.release", ["update"])]
    applied = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, bumped))
    assert applied.outputs["release_version"] == "1.1.0"


async def test_lists_as_json_plan_the_same_as_comma_joined(
    acts: TerraformActivities, source: Path
) -> None:
    first = await plan(acts, source, "1.0.0")
    await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, first))
    as_json = await plan(acts, source, "1.0.0", json_lists=True)
    assert (as_json.add, as_json.change, as_json.destroy) == (0, 0, 0)


async def test_tampered_plan_is_refused(acts: TerraformActivities, source: Path) -> None:
    planned = await plan(acts, source, "1.0.0")
    with Path(planned.plan_file).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, planned))
    assert err.value.type == "PlanMismatch"
    assert err.value.non_retryable
    assert planned.plan_sha256 in str(err.value)


async def test_retry_of_applied_plan_returns_outputs(
    acts: TerraformActivities, source: Path, settings: PlatformSettings
) -> None:
    planned = await plan(acts, source, "2.0.0")
    first = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, planned))
    serial = json.loads(state_path(settings, TF_DIR).read_text())["serial"]

    # the activity is retried after it finished (e.g. the completion was lost)
    again = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, planned))
    assert again == first
    assert json.loads(state_path(settings, TF_DIR).read_text())["serial"] == serial

    # the worker died after terraform wrote the state but before `.done` was recorded:
    # the retry's apply sees a stale plan, checks the state is what the plan produces
    (settings.terraform_dir / "applied" / f"{planned.plan_sha256}.done").unlink()
    recovered = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, planned))
    assert recovered == first


async def test_stale_plan_is_refused(acts: TerraformActivities, source: Path) -> None:
    old = await plan(acts, source, "1.0.0")
    newer = await plan(acts, source, "1.1.0")
    await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, newer))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, old))
    assert err.value.type == "PlanStale"
    assert err.value.non_retryable


async def test_state_lock_held_by_another_process_is_retryable(
    acts: TerraformActivities, source: Path, settings: PlatformSettings
) -> None:
    first = await plan(acts, source, "1.0.0")
    await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, first))
    bumped = await plan(acts, source, "1.1.0")

    # The local backend locks with fcntl (F_SETLK) on the state file itself; a POSIX
    # lock held by this test process is held against the terraform subprocess.
    with state_path(settings, TF_DIR).open("r+") as state:
        fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TerraformStateLocked) as err:
            await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, bumped))
        assert "locked" in str(err.value)
        assert "Error acquiring the state lock" in str(err.value)
        with pytest.raises(TerraformStateLocked):
            await plan(acts, source, "1.2.0")
        fcntl.lockf(state, fcntl.LOCK_UN)

    # Temporal's retry, once the lock is gone, applies the same reviewed plan
    applied = await ActivityEnvironment().run(acts.terraform_apply, apply_input(source, bumped))
    assert applied.applied and applied.outputs["release_version"] == "1.1.0"


async def test_invalid_variables_and_config_are_non_retryable(
    acts: TerraformActivities, source: Path
) -> None:
    with pytest.raises(ApplicationError) as err:
        await plan(acts, source, "1+2")
    assert err.value.type == "InvalidConfig" and err.value.non_retryable
    assert "Invalid value for variable" in str(err.value)
    assert "release_version must be a valid image tag" in str(err.value)

    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            acts.terraform_plan,
            TerraformPlanInput(
                release_id="r-empty",
                source=str(source),
                terraform_dir=TF_DIR,
                variables={**variables("1.0.0"), "services": " , "},
            ),
        )
    assert err.value.type == "InvalidConfig"
    assert "services must name at least one service" in str(err.value)

    (source / TF_DIR / "broken.tf").write_text('output "bad" {\n  value = var.nope\n}\n')
    with pytest.raises(ApplicationError) as err:
        await plan(acts, source, "1.0.0")
    assert err.value.type == "InvalidConfig"
    assert "Reference to undeclared input variable" in str(err.value)

    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            acts.terraform_plan,
            TerraformPlanInput(
                release_id="r-missing",
                source=str(source),
                terraform_dir="terraform/envs/nowhere",
                variables={},
            ),
        )
    assert err.value.type == "InvalidConfig"
    assert "terraform/envs/nowhere" in str(err.value)


async def test_configuration_without_platform_variables(
    acts: TerraformActivities, tmp_path: Path
) -> None:
    """`registry`/`entrypoints` come from a file, so a config need not declare them."""
    config = tmp_path / "other" / "infra"
    config.mkdir(parents=True)
    (config / "main.tf").write_text(
        'terraform {\n  backend "local" {}\n}\n\n'
        'variable "release_version" {\n  type = string\n}\n\n'
        'variable "replicas" {\n  type = list(number)\n}\n\n'
        'resource "terraform_data" "release" {\n'
        "  input = { version = var.release_version, replicas = var.replicas }\n}\n"
    )
    planned = await ActivityEnvironment().run(
        acts.terraform_plan,
        TerraformPlanInput(
            release_id="r-other",
            source=str(tmp_path / "other"),
            terraform_dir="infra",
            # a list-typed variable takes a JSON/HCL list, converted by terraform
            variables={"release_version": "3.0.0", "replicas": "[1, 2]"},
        ),
    )
    assert (planned.add, planned.change, planned.destroy) == (1, 0, 0)


async def test_platform_variables_include_the_moto_endpoint(
    acts: TerraformActivities, source: Path, settings: PlatformSettings
) -> None:
    """The offline configuration does not declare aws_endpoint: a warning, not an error."""
    planned = await plan(acts, source, "1.0.0")
    folder = Path(planned.plan_file).parent
    platform_vars = json.loads((folder / "platform.tfvars.json").read_text())
    assert platform_vars["aws_endpoint"] == settings.moto_url
    assert platform_vars["registry"] == "127.0.0.1:5999"
    log = (folder / "plan.log").read_text()
    assert "Value for undeclared variable" in log


@pytest.mark.parametrize(
    ("text", "backend"),
    [
        ('terraform {\n  backend "local" {}\n}\n', "local"),
        ('terraform {\n  backend "s3" {}\n}\n', "s3"),
        # no backend block: terraform's default, the local backend
        ('resource "terraform_data" "x" {}\n', "local"),
        # a commented-out block is not the backend
        (
            '# backend "s3" {}\n/* backend "gcs" {} */\nterraform {\n  backend "local" {}\n}\n',
            "local",
        ),
    ],
)
def test_backend_type_is_read_from_the_configuration(
    tmp_path: Path, text: str, backend: str
) -> None:
    (tmp_path / "versions.tf").write_text(text)
    assert _backend_type(tmp_path) == backend


@pytest.mark.parametrize("env", ["staging", "production"])
def test_cloud_environments_use_the_s3_backend(env: str) -> None:
    assert _backend_type(REPO_ROOT / "terraform" / "envs" / env) == "s3"
    assert _backend_type(REPO_ROOT / "terraform" / "envs" / "local") == "local"


def test_each_local_root_keeps_its_own_state(settings: PlatformSettings) -> None:
    """A release plans several roots: two local-backend roots must never share a state."""
    staging = state_path(settings, "terraform/envs/local")
    other = state_path(settings, "infra/offline/")
    assert staging != other
    assert staging.parent == other.parent == settings.terraform_dir / "state"
    assert staging.name == "terraform-envs-local.tfstate"


async def test_two_roots_of_one_release_keep_their_own_plans(
    acts: TerraformActivities, source: Path
) -> None:
    """A release plans every root before applying any: no plan may overwrite another."""
    shutil.copytree(CONFIG, source / "infra" / "second")
    release_id = "r-two-roots"
    plans = {}
    for root in (TF_DIR, "infra/second"):
        plans[root] = await ActivityEnvironment().run(
            acts.terraform_plan,
            TerraformPlanInput(release_id, str(source), root, variables("1.0.0")),
        )
    first, second = plans[TF_DIR], plans["infra/second"]
    assert first.plan_file != second.plan_file
    assert Path(first.plan_file).parent.name == "infra-offline"
    for root, planned in plans.items():
        applied = await ActivityEnvironment().run(
            acts.terraform_apply,
            TerraformApplyInput(
                release_id, str(source), root, planned.plan_file, planned.plan_sha256
            ),
        )
        assert applied.applied and applied.outputs["release_version"] == "1.0.0"
