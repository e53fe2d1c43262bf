"""The moto server component of the local platform, for real, on a free loopback port."""

from __future__ import annotations

import os
from pathlib import Path

import boto3

from brewline.platform import PlatformSettings
from local.platform import COMPONENTS, DEFAULT_COMPONENTS, LocalPlatform, http_status


def listening_on(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp shows them) of sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_moto_starts_with_the_platform_serves_aws_on_loopback_and_stops(tmp_path: Path) -> None:
    assert "moto" in DEFAULT_COMPONENTS and "moto" in COMPONENTS
    settings = PlatformSettings(home=str(tmp_path / "home"))
    platform = LocalPlatform(settings)
    # a PID file naming another live process (this test) must not pass for moto
    settings.run_dir.mkdir(parents=True)
    platform.pid_file("moto").write_text(f"{os.getpid()}\n")
    try:
        platform.up(["moto"], free_ports=True)
        pid = platform.running_pid("moto")
        assert pid is not None and pid != os.getpid()
        assert settings.moto_port != 5050  # a free port, not the default
        assert PlatformSettings.load(settings.home_path).moto_url == settings.moto_url
        assert listening_on(settings.moto_port) == {"0100007F"}  # 127.0.0.1 only
        assert platform.status()["moto"] == f"running (pid {pid}, {settings.moto_url})"
        assert http_status(settings.moto_url + "/moto-api/") == 200

        s3 = boto3.client(
            "s3",
            endpoint_url=settings.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="probe")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]

        platform.up(["moto"], free_ports=True)  # running: nothing restarts, no port moves
        assert platform.running_pid("moto") == pid
        assert PlatformSettings.load(settings.home_path).moto_port == settings.moto_port
    finally:
        platform.down()
    assert platform.status()["moto"] == "stopped"
    assert not platform.pid_file("moto").exists()
    assert http_status(settings.moto_url + "/moto-api/") is None
