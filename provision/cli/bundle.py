"""`provision bundle`: signed policy bundles for hosts in pull mode (docs/pull.md)."""

from __future__ import annotations

from pathlib import Path

import click

from provision.cli import console
from provision.cli.context import AppContext, pass_app
from provision.cli.options import env_option, selection_argument


@click.group()
def bundle() -> None:
    """Signed policy bundles that PCs in pull mode fetch, verify and apply by themselves.

    The signing key lives beside the CA in STATE_DIR/ca/ (mode 0600, never
    printed); PCs trust it through STATE_DIR/ca/bundle-allowed-signers and
    check every bundle with `ssh-keygen -Y verify`.

    \b
    Example:
      provision bundle key init
      provision bundle build role:lab_pc
      provision bundle verify .provision/bundles/000001/lab_pc.khu_014.000001.tar.gz
    """


@bundle.group()
def key() -> None:
    """The department's bundle signing key, kept beside the CA (never printed).

    \b
    Example:
      provision bundle key init
      provision bundle key show
    """


def _key_data(info: object) -> dict[str, str]:
    from provision.bundles import KeyInfo

    assert isinstance(info, KeyInfo)
    return {
        "key": str(info.key_path),
        "public_key": info.public_key,
        "fingerprint": info.fingerprint,
        "allowed_signers": str(info.allowed_signers_path),
    }


@key.command("init")
@pass_app
def key_init(app: AppContext) -> None:
    """Create the signing key (refused when one exists: every PC trusts it).

    \b
    Example:
      provision bundle key init
    """
    from provision.bundles import init_key

    info = init_key(app.settings)
    console.out.print(f"wrote {info.key_path} (0600) and {info.key_path}.pub", markup=False)
    console.out.print(f"fingerprint {info.fingerprint}", markup=False)
    console.out.print(
        f"PCs trust bundles through {info.allowed_signers_path} (the pull_agent role copies it)",
        markup=False,
    )


@key.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def key_show(app: AppContext, as_json: bool) -> None:
    """Show the signing key's public half, fingerprint and allowed-signers file.

    \b
    Example:
      provision bundle key show --json
    """
    from provision.bundles import key_info

    data = _key_data(key_info(app.settings))
    if as_json:
        console.print_json(data)
        return
    for name, value in data.items():
        console.out.print(f"{name}: {value}", markup=False)


@bundle.command()
@selection_argument()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the bundles in. Default: STATE_DIR/bundles/SERIAL/.",
)
@click.option(
    "--valid-days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Days until a bundle expires and PCs refuse it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@env_option
@pass_app
def build(
    app: AppContext, selection: str, out_dir: Path | None, valid_days: int, as_json: bool
) -> None:
    """Build one signed bundle per role and site of the hosts SELECTION names.

    \b
    Example:
      provision bundle build role:lab_pc
      provision bundle build district:gazipur --out /srv/bundles --valid-days 14
    """
    from provision.bundles import build_bundles

    result = build_bundles(app.settings, selection, out_dir=out_dir, valid_days=valid_days)
    if as_json:
        console.print_json(
            {
                "serial": result.serial,
                "out": str(result.out_dir),
                "bundles": [
                    {
                        "path": str(b.path),
                        "name": b.manifest.name,
                        "hosts": len(b.manifest.hosts),
                        "bytes": b.size,
                        "not_after": b.manifest.not_after.isoformat(),
                        "withheld": list(b.manifest.withheld),
                    }
                    for b in result.bundles
                ],
            }
        )
        return
    for b in result.bundles:
        withheld = f", {len(b.manifest.withheld)} vaulted values left out" * bool(
            b.manifest.withheld
        )
        console.out.print(
            f"{b.path}  {len(b.manifest.hosts)} hosts, {b.size} bytes{withheld}", markup=False
        )
    console.out.print(
        f"serial {result.serial}: {len(result.bundles)} bundles in {result.out_dir}", markup=False
    )


@bundle.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--allowed-signers",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Allowed-signers file to trust. Default: STATE_DIR/ca/bundle-allowed-signers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def verify(app: AppContext, file: Path, allowed_signers: Path | None, as_json: bool) -> None:
    """Check FILE as a PC does: signature, every checksum, nothing extra, not expired.

    Exit 0 when it is good; 3, with the reason, when a PC would refuse it.

    \b
    Example:
      provision bundle verify lab_pc.khu_014.000012.tar.gz
    """
    from provision.bundles import key_info, verify_bundle

    signers = allowed_signers or key_info(app.settings).allowed_signers_path
    manifest = verify_bundle(file, signers)
    data = {
        "file": str(file),
        "name": manifest.name,
        "serial": manifest.serial,
        "built_at": manifest.built_at.isoformat(),
        "not_after": manifest.not_after.isoformat(),
        "hosts": list(manifest.hosts),
        "standard": f"{manifest.standard_id} {manifest.standard_version}",
        "revision": manifest.revision,
        "files": len(manifest.files),
    }
    if as_json:
        console.print_json(data)
        return
    console.out.print(
        f"good: {manifest.name} serial {manifest.serial}, {len(manifest.files)} files, "
        f"{len(manifest.hosts)} hosts, valid until {manifest.not_after:%Y-%m-%d %H:%M} UTC",
        markup=False,
    )


@bundle.command()
@selection_argument(missing=None)
@click.option(
    "--from",
    "source",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder of bundles to publish. Default: the newest build in STATE_DIR/bundles/.",
)
@click.option("--check", is_flag=True, help="Preview the rollout: change nothing on the servers.")
@click.option("--yes", is_flag=True, help="Do not ask before publishing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@env_option
@pass_app
def publish(
    app: AppContext,
    selection: str | None,
    source: Path | None,
    check: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Publish bundles on the field servers SELECTION names (default: every one).

    Every bundle is verified first; the servers get them over a recorded rollout
    of playbooks/bundle_servers.yml (provision runs), with a department CA
    certificate for their bundle_server_name and the hashed upload secrets of
    every PC in pull mode.

    \b
    Example:
      provision bundle publish --yes
      provision bundle publish district:gazipur --from /srv/bundles/000012 --check
    """
    from provision.bundles.publish import plan_publish, prepare_publish
    from provision.cli.rollout import _confirm, _drive
    from provision.rollout import run_rollout

    planned = plan_publish(app.settings, selection, source=source, check=check)
    console.err.print(
        f"{len(planned.bundles)} bundles from {planned.source} to "
        f"{len(planned.servers)} field servers; {len(planned.pull_hosts)} PCs in pull mode",
        markup=False,
    )
    plan = planned.plan
    _confirm(plan, yes)
    prepare_publish(app.settings, planned)
    _drive(
        app,
        len(plan.hosts),
        as_json,
        lambda display, stop: run_rollout(app.settings, plan, on_progress=display, stop=stop),
    )
