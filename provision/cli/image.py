"""`provision image`: Standard OS install seeds and images for new machines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import strategy_option
from provision.images import build as build_service
from provision.images import manifest as manifest_service
from provision.images import seeds as seed_service


@click.group()
def image() -> None:
    """Standard OS install seeds and images for new machines.

    A seed answers the Debian or Ubuntu installer's questions so a technician
    installs a machine from a USB stick without typing anything; an image is a
    Debian 12 system already brought to its role's standard by the same roles
    as a rollout. See docs/images.md.

    \b
    Example:
      provision image seed --role lab_pc --os debian-12 --out seed/
      sudo provision image build --role lab_pc --format qcow2 --out lab_pc.qcow2
      provision image verify lab_pc.qcow2
    """


@image.command()
@click.option("--role", required=True, help="The machine's role (lab_pc, field_server, …).")
@click.option(
    "--os",
    "os_release",
    required=True,
    metavar="OS",
    help="The installer: " + " or ".join(seed_service.OS_RELEASES) + ".",
)
@click.option("--site", metavar="SITE", help="Site code; names the machine (dhk-kal-nag-s01-…).")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write (preseed.cfg, or user-data and meta-data).",
)
@click.option(
    "--force", is_flag=True, help="Replace the output folder if it exists (never a file)."
)
@click.option(
    "--password-hash-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file holding a crypt(3) hash (mkpasswd -m yescrypt) for the automation "
    "account's console login. Default: no password, key login only.",
)
@click.option("--standard", metavar="ID|FILE", help="Which standard, if standards/ has several.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_app
def seed(
    app: AppContext,
    role: str,
    os_release: str,
    site: str | None,
    out: Path,
    force: bool,
    password_hash_file: Path | None,
    standard: str | None,
    as_json: bool,
) -> None:
    """Write an unattended installer seed for a new machine of ROLE.

    Debian 12 gets a preseed (preseed.cfg), Ubuntu 24.04 an autoinstall
    (user-data and meta-data for cloud-init's NoCloud). The seed sets the role's
    partitioning, the standard's locale, keyboard and time zone, the automation
    account with the control node's key and its sudo grant, and installs sshd
    and python3. It is checked before it is written, and written whole or not
    at all. Needs the automation key (provision keys generate).

    \b
    Example:
      provision image seed --role lab_pc --os debian-12 --out usb/preseed
      provision image seed --role field_server --os ubuntu-24.04 --site DHK-GAZ-KAL --out nocloud/
    """
    result = seed_service.write_seed(
        app.settings,
        seed_service.SeedRequest(
            role=role,
            os=os_release,
            out=out,
            site=site,
            force=force,
            password_hash_file=password_hash_file,
            standard=standard,
        ),
    )
    if as_json:
        console.print_json(
            {
                "out": str(result.out),
                "files": [str(f) for f in result.files],
                "key_fingerprint": result.key_fingerprint,
                **{
                    k: v
                    for k, v in dataclasses.asdict(result.values).items()
                    if k != "password_hash"
                },
                "password_hash": result.values.password_hash is not None,
            }
        )
        return
    v = result.values
    console.out.print(f"wrote {', '.join(f.name for f in result.files)} to {result.out}")
    console.out.print(
        f"  {v.os} {v.role} ({v.partitioning.description}); {v.locale}, keyboard {v.keyboard}, "
        f"{v.timezone}; account {v.user} with key {result.key_fingerprint}"
        + ("; console password from the given hash" if v.password_hash else "; no password")
    )


@image.command()
@click.option("--role", required=True, help="The machine's role (lab_pc, field_server, …).")
@click.option(
    "--format",
    "fmt",
    required=True,
    metavar="FORMAT",
    help="tar (root filesystem), qcow2 (bootable disk) or vagrant-box (libvirt).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Image file to write. Default: <role>.<tar|qcow2|box> here.",
)
@click.option("--force", is_flag=True, help="Replace the image if it exists.")
@click.option(
    "--size",
    default=build_service.DEFAULT_SIZE_GB,
    show_default=True,
    type=click.IntRange(2, 2048),
    help="Disk size in GB (qcow2, vagrant-box; the file grows only as written).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@strategy_option
@pass_app
def build(
    app: AppContext, role: str, fmt: str, out: Path | None, force: bool, size: int, as_json: bool
) -> None:
    """Build a Debian 12 image of ROLE brought to the standard, with its manifest.

    Boots the lab's Debian root filesystem as a one-host build lab on its own
    subnet, applies the role's playbook over SSH through a recorded rollout,
    seals it (no host keys, machine-id, logs, caches or build key; the automation
    account keeps the control node's key) and packs it. The manifest
    (<image>.manifest.json) lists the standard, every package and the image's
    sha256. Needs root. Nothing half-built is left behind on error or Ctrl-C.

    \b
    Example:
      sudo provision image build --role lab_pc --format qcow2
      sudo provision image build --role field_server --format tar --out fs.tar
      sudo provision image build --role lab_pc --format vagrant-box --out lab_pc.box
    """
    request = build_service.BuildRequest(role=role, format=fmt, out=out, force=force, size_gb=size)
    build_service.preflight(app.settings, request)  # refused before any progress is shown
    with console.Steps(f"image build {role} ({fmt})") as steps:
        result = build_service.build_image(app.settings, request, on_step=steps)
    if as_json:
        console.print_json(result.manifest)
        return
    console.out.print(
        f"built {result.image} ({result.image.stat().st_size / 2**20:.0f} MiB, "
        f"{len(result.manifest['packages'])} packages) in {result.seconds:.0f}s; "
        f"manifest {result.manifest_path}"
    )


@image.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@pass_app
def verify(app: AppContext, file: Path, as_json: bool) -> None:
    """Check an image against the manifest written beside it at build time.

    Fails (exit 3), naming the file, when the image's bytes changed.

    \b
    Example:
      provision image verify lab_pc.qcow2
    """
    result = manifest_service.verify_image(file)
    if as_json:
        console.print_json(dataclasses.asdict(result))
        return
    console.out.print(
        f"{result.image}: matches its manifest ({result.role}, "
        f"{result.standard_id} {result.standard_version}, sha256 {result.sha256[:16]}…)"
    )
