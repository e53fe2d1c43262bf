"""Secret Terraform variables by reference: resolved in the activity, given as TF_VAR_ only.

The real terraform plans and applies a copy of the offline fixture with a `db_password`
variable (deliberately NOT `sensitive`, so terraform prints it wherever it can); the
value must reach terraform (an output is its sha256) and nothing the release keeps: no
log, no file of the release folder (the saved plan file aside, see below), no argv, no
activity result. AWS references are read from a real moto server.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ecr import EcrClient, parse_ecr_repository
from activities.redact import MASK, forget_registered_secrets, redact
from activities.secrets import SecretResolver
from activities.terraform import TerraformActivities
from brewline.model import TerraformApplyInput, TerraformPlanInput
from brewline.platform import REPO_ROOT, PlatformSettings, tool_path

CONFIG = REPO_ROOT / "tests" / "activities" / "testdata" / "terraform-offline"
TF_DIR = "infra/offline"
SECRET = "Tr0ub4dor-and-3-horses"  # what the worker's environment holds
ENV_NAME = "BREWLINE_TEST_DB_PASSWORD"
REGION = "us-east-1"

SECRET_TF = """
variable "db_password" {
  description = "Not marked sensitive on purpose: the activity must hide it anyway."
  type        = string
}

resource "terraform_data" "database" {
  input = { password = var.db_password }
}

output "db_password_sha256" {
  value = sha256(var.db_password)
}
"""


@pytest.fixture(autouse=True)
def _no_registered_values() -> Iterator[None]:
    forget_registered_secrets()
    yield
    forget_registered_secrets()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(CONFIG, src / TF_DIR)
    (src / TF_DIR / "secret.tf").write_text(SECRET_TF)
    return src


@pytest.fixture
def settings(tmp_path: Path) -> PlatformSettings:
    return PlatformSettings(home=str(tmp_path / "home"), registry_port=5999)


def plan_input(source: Path, release_id: str, refs: dict[str, str]) -> TerraformPlanInput:
    return TerraformPlanInput(
        release_id=release_id,
        source=str(source),
        terraform_dir=TF_DIR,
        variables={
            "release_version": "1.0.0",
            "services": "api-gateway",
            "environments": "staging",
        },
        secret_variables=refs,
    )


async def test_secret_reaches_terraform_and_nothing_the_release_keeps(
    source: Path, settings: PlatformSettings
) -> None:
    acts = TerraformActivities(settings, secrets=SecretResolver(environ={ENV_NAME: SECRET}))
    release_id = f"r-{uuid.uuid4().hex[:8]}"
    planned = await ActivityEnvironment().run(
        acts.terraform_plan, plan_input(source, release_id, {"db_password": f"env:{ENV_NAME}"})
    )
    assert "terraform_data.database" in {c.address for c in planned.resource_changes}
    plan_file = Path(planned.plan_file)
    assert plan_file.stat().st_mode & 0o777 == 0o600  # it holds the value (terraform's design)
    applied = await ActivityEnvironment().run(
        acts.terraform_apply,
        TerraformApplyInput(
            release_id=release_id,
            source=str(source),
            terraform_dir=TF_DIR,
            plan_file=planned.plan_file,
            plan_sha256=planned.plan_sha256,
        ),
    )
    # terraform got the value: its sha256 comes back, the value itself does not
    assert applied.outputs["db_password_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in repr(planned) and SECRET not in repr(applied)

    release_dir = settings.release_dir(release_id)
    kept = [p for p in release_dir.rglob("*") if p.is_file() and p != plan_file]
    assert {p.name for p in kept} >= {"plan.log", "show-plan.log", "apply.log", "output.log"}
    for path in kept:
        assert SECRET.encode() not in path.read_bytes(), f"{path} holds the secret"
    # the logs show terraform did print it, masked
    assert MASK in (plan_file.parent / "plan.log").read_text()
    assert MASK in (plan_file.parent / "show-plan.log").read_text()
    refs = (plan_file.parent / "plan.secret-refs.json").read_text()
    assert f"env:{ENV_NAME}" in refs


async def test_apply_in_a_fresh_worker_masks_the_plan_it_shows(
    source: Path, settings: PlatformSettings
) -> None:
    """Apply resolves the references again: a worker that did not make the plan (nothing
    registered) still masks the value `terraform show -json` prints."""
    resolver = SecretResolver(environ={ENV_NAME: SECRET})
    release_id = f"r-{uuid.uuid4().hex[:8]}"
    planned = await ActivityEnvironment().run(
        TerraformActivities(settings, secrets=resolver).terraform_plan,
        plan_input(source, release_id, {"db_password": f"env:{ENV_NAME}"}),
    )
    forget_registered_secrets()  # a restarted worker
    await ActivityEnvironment().run(
        TerraformActivities(settings, secrets=resolver).terraform_apply,
        TerraformApplyInput(
            release_id=release_id,
            source=str(source),
            terraform_dir=TF_DIR,
            plan_file=planned.plan_file,
            plan_sha256=planned.plan_sha256,
        ),
    )
    for name in ("show-plan.log", "apply.log"):
        log = Path(planned.plan_file).parent / name
        assert SECRET not in log.read_text()


async def test_a_missing_value_names_variable_and_reference(
    source: Path, settings: PlatformSettings
) -> None:
    acts = TerraformActivities(settings, secrets=SecretResolver(environ={}))
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            acts.terraform_plan,
            plan_input(source, "r-missing", {"db_password": f"env:{ENV_NAME}"}),
        )
    assert failed.value.type == "InvalidConfig" and failed.value.non_retryable
    assert "db_password" in failed.value.message and f"env:{ENV_NAME}" in failed.value.message


async def test_a_variable_given_both_ways_is_refused(
    source: Path, settings: PlatformSettings
) -> None:
    acts = TerraformActivities(settings, secrets=SecretResolver(environ={ENV_NAME: SECRET}))
    both = plan_input(source, "r-both", {"release_version": f"env:{ENV_NAME}"})
    with pytest.raises(ApplicationError, match="release_version") as failed:
        await ActivityEnvironment().run(acts.terraform_plan, both)
    assert failed.value.type == "InvalidConfig"


async def test_file_references(tmp_path: Path) -> None:
    secret_file = tmp_path / "db_password"
    secret_file.write_text(SECRET + "\n")
    resolver = SecretResolver(environ={})
    assert await resolver.resolve("db_password", f"file:{secret_file}") == SECRET
    with pytest.raises(ApplicationError, match="no such file") as failed:
        await resolver.resolve("db_password", f"file:{tmp_path / 'absent'}")
    assert failed.value.type == "InvalidConfig"
    (tmp_path / "empty").write_text("")
    with pytest.raises(ApplicationError, match="empty"):
        await resolver.resolve("db_password", f"file:{tmp_path / 'empty'}")


# ---- AWS references on a real moto server --------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free loopback port, stopped by its PID at the end."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [tool_path("moto_server", "BREWLINE_MOTO_SERVER"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):  # noqa: S310
                    break
            except urllib.error.HTTPError:
                break
            except (urllib.error.URLError, OSError):
                assert process.poll() is None, f"moto_server exited; see {log}"
                assert time.monotonic() < deadline, f"moto_server did not answer; see {log}"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def aws() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


async def test_aws_references(moto_url: str, aws: boto3.Session) -> None:
    secrets = aws.client("secretsmanager", endpoint_url=moto_url)
    ssm = aws.client("ssm", endpoint_url=moto_url)
    name = f"go-coffee/db-{uuid.uuid4().hex[:6]}"
    arn = secrets.create_secret(Name=name, SecretString=SECRET)["ARN"]
    json_arn = secrets.create_secret(
        Name=name + "-rds", SecretString='{"username": "app", "password": "' + SECRET + '"}'
    )["ARN"]
    parameter = f"/go-coffee/{uuid.uuid4().hex[:6]}/db_password"
    ssm.put_parameter(Name=parameter, Value=SECRET, Type="SecureString")
    resolver = SecretResolver(endpoint_url=moto_url, session=aws)

    assert await resolver.resolve("a", f"aws-secretsmanager:{arn}") == SECRET
    assert await resolver.resolve("b", f"aws-secretsmanager:{name}") == SECRET
    assert await resolver.resolve("c", f"aws-secretsmanager:{json_arn}#password") == SECRET
    assert await resolver.resolve("d", f"aws-ssm:{parameter}") == SECRET

    for missing in (f"aws-secretsmanager:{name}-absent", f"aws-ssm:{parameter}-absent"):
        with pytest.raises(ApplicationError) as failed:
            await resolver.resolve("db_password", missing)
        assert failed.value.type == "InvalidConfig" and failed.value.non_retryable
        assert "db_password" in failed.value.message and missing in failed.value.message
    with pytest.raises(ApplicationError, match="no member 'pass'"):
        await resolver.resolve("db_password", f"aws-secretsmanager:{json_arn}#pass")


async def test_aws_unreachable_is_retryable(aws: boto3.Session) -> None:
    resolver = SecretResolver(
        endpoint_url=f"http://127.0.0.1:{_free_port()}", session=aws, timeout=2
    )
    with pytest.raises(RuntimeError, match="db_password") as failed:
        await resolver.resolve("db_password", "aws-ssm:/go-coffee/db_password")
    assert not isinstance(failed.value, ApplicationError)


async def test_registry_passwords_from_ecr_are_masked(moto_url: str, aws: boto3.Session) -> None:
    """The ECR password the build pushes with is registered as soon as it is fetched."""
    repository = parse_ecr_repository("123456789012.dkr.ecr.us-east-1.amazonaws.com/go-coffee/x")
    token = await EcrClient(moto_url, session=aws).get_authorization_token(repository)
    assert redact(f"login AWS {token.password} ok") == f"login AWS {MASK} ok"
