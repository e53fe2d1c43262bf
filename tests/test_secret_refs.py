"""Secret references: their syntax, and infra.secret_variables and infra.variables."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from brewline.config import ConfigError, validate
from brewline.secret_refs import SecretRef, parse_secret_ref

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:go-coffee/db-AbCdEf"
BASE: dict[str, Any] = {
    "version": 1,
    "project": "go-coffee",
    "go_module": "examples/go-coffee",
    "services": {"api-gateway": {}},
    "environments": {"staging": {"target": "local"}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env:GO_COFFEE_DB_PASSWORD", SecretRef("env", "GO_COFFEE_DB_PASSWORD")),
        ("file:/run/secrets/db", SecretRef("file", "/run/secrets/db")),
        (f"aws-secretsmanager:{ARN}", SecretRef("aws-secretsmanager", ARN, region="eu-west-1")),
        (
            f"aws-secretsmanager:{ARN}#password",
            SecretRef("aws-secretsmanager", ARN, key="password", region="eu-west-1"),
        ),
        ("aws-secretsmanager:go-coffee/db", SecretRef("aws-secretsmanager", "go-coffee/db")),
        ("aws-ssm:/go-coffee/db_password", SecretRef("aws-ssm", "/go-coffee/db_password")),
        (
            "aws-ssm:arn:aws:ssm:us-east-2:123456789012:parameter/go/db",
            SecretRef(
                "aws-ssm", "arn:aws:ssm:us-east-2:123456789012:parameter/go/db", region="us-east-2"
            ),
        ),
    ],
)
def test_references_parse(text: str, expected: SecretRef) -> None:
    assert parse_secret_ref(text) == expected
    assert str(parse_secret_ref(text)) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("env:", "not an environment variable name"),
        ("env:1ABC", "not an environment variable name"),
        ("env:A;rm -rf", "not an environment variable name"),
        ("file:relative/path", "absolute path"),
        ("file:/run/../etc/shadow", "without '..'"),
        ("aws-secretsmanager:arn:aws:s3:::bucket", "not a Secrets Manager secret ARN"),
        (f"aws-secretsmanager:{ARN}#bad key", "not a JSON member name"),
        ("aws-ssm:go coffee", "not an SSM parameter name"),
        ("vault:secret/db", "not a secret reference"),
        (12345, "not a secret reference"),
    ],
)
def test_bad_references_are_refused(text: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_secret_ref(text)


def test_a_value_written_instead_of_a_reference_is_not_repeated() -> None:
    with pytest.raises(ValueError) as failed:
        parse_secret_ref("hunter2-the-password")
    assert "hunter2" not in str(failed.value)


def pipeline(**infra: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["infra"] = {"terraform_dir": "terraform/envs/local", **infra}
    return data


def test_secret_variables_are_read_as_references() -> None:
    config = validate(
        pipeline(
            variables={"instance_count": 2},
            secret_variables={
                "db_password": "env:GO_COFFEE_DB_PASSWORD",
                "api_key": f"aws-secretsmanager:{ARN}#key",
            },
        )
    )
    assert config.infra.variables == {"instance_count": "2"}
    assert config.infra.secret_variables == {
        "db_password": "env:GO_COFFEE_DB_PASSWORD",
        "api_key": f"aws-secretsmanager:{ARN}#key",
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as failed:
        validate(data)
    return failed.value.problems


def test_a_secret_by_value_is_refused_without_repeating_it() -> None:
    found = problems(pipeline(secret_variables={"db_password": "hunter2-the-password"}))
    assert len(found) == 1
    assert "infra.secret_variables" in found[0] and "db_password" in found[0]
    assert "hunter2" not in found[0]


def test_a_plain_variable_named_like_a_secret_is_refused() -> None:
    found = problems(pipeline(variables={"db_password": "hunter2"}))
    assert len(found) == 1 and "infra.variables.db_password" in found[0]
    assert "infra.secret_variables" in found[0]


def test_a_variable_given_both_ways_is_one_problem() -> None:
    found = problems(
        pipeline(variables={"db_password": "x"}, secret_variables={"db_password": "env:DB"})
    )
    assert found == [
        "infra.variables.db_password is also in infra.secret_variables; keep it only there"
    ]


def test_bad_secret_variable_names_and_shapes() -> None:
    assert "identifier" in problems(pipeline(secret_variables={"bad-name": "env:X"}))[0]
    assert "must map" in problems(pipeline(secret_variables=["env:X"]))[0]
