"""The portal register: which office portals exist, who serves them, and how.

The register is YAML in the workspace, one file per environment,
`portals/<env>.yml` (see docs/portals.md for why it lives beside, not inside,
`inventories/<env>/`). `load_register` reads it and reports every mistake at its
file and line, naming the field; `save_register` writes it atomically. This
module is pure data and validation: the inventory and the admin tree are checked
by the service.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InputError
from provision.infra.atomic import write_atomic
from provision.infra.yamlfile import load_located
from provision.model.located import Located
from provision.model.places import LEVELS

KINDS = ("static", "php")
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+")
_FIELDS = {
    "domain",
    "host",
    "kind",
    "content",
    "office",
    "place",
    "level",
    "contacts",
    "tls",
    "nginx_directives",
}
_CONTACT_FIELDS = {"name", "email", "phone", "role"}


@dataclass(frozen=True)
class Contact:
    """Someone to call about a portal."""

    name: str
    email: str = ""
    phone: str = ""
    role: str = ""

    def record(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("name", self.name),
                ("email", self.email),
                ("phone", self.phone),
                ("role", self.role),
            )
            if v
        }


@dataclass(frozen=True)
class ExternalTls:
    """A certificate chain and key issued outside the department CA (paths on the control node)."""

    cert: str
    key: str


@dataclass(frozen=True)
class Portal:
    """One office's web portal."""

    domain: str
    host: str
    kind: str
    #: A folder or an archive (.tar.gz, .tgz, .tar, .zip), relative to the workspace or absolute.
    content: str
    office: str = ""
    #: Real names in the admin tree, division first ("Dhaka", "Gazipur").
    place: tuple[str, ...] = ()
    level: str = ""
    contacts: tuple[Contact, ...] = ()
    #: None: a certificate from the department CA.
    tls: ExternalTls | None = None
    #: Extra lines for the portal's nginx server block.
    nginx_directives: tuple[str, ...] = ()
    #: Line of the entry in the register (None for one not read from a file).
    line: int | None = field(default=None, compare=False)

    @property
    def user(self) -> str:
        """The system user of the portal's PHP pool: `p-` and the domain, at most 32 characters."""
        slug = self.domain.replace(".", "-")
        name = f"p-{slug}"
        if len(name) <= 32:
            return name
        digest = hashlib.sha256(self.domain.encode()).hexdigest()[:8]
        return f"p-{slug[:21].rstrip('-')}-{digest}"

    def record(self) -> dict[str, Any]:
        """The entry as written in the register (fields in a fixed order, empty ones left out)."""
        data: dict[str, Any] = {
            "domain": self.domain,
            "host": self.host,
            "kind": self.kind,
            "content": self.content,
        }
        if self.office:
            data["office"] = self.office
        if self.place:
            data["place"] = "/".join(self.place)
        if self.level:
            data["level"] = self.level
        if self.contacts:
            data["contacts"] = [c.record() for c in self.contacts]
        if self.tls is not None:
            data["tls"] = {"cert": self.tls.cert, "key": self.tls.key}
        if self.nginx_directives:
            data["nginx_directives"] = list(self.nginx_directives)
        return data


@dataclass
class Register:
    """The portals of one environment, in file order."""

    path: Path
    portals: list[Portal] = field(default_factory=list)

    def find(self, domain: str) -> Portal | None:
        wanted = domain.strip().lower().rstrip(".")
        return next((p for p in self.portals if p.domain == wanted), None)

    def on_host(self, host: str) -> list[Portal]:
        return [p for p in self.portals if p.host == host]


def check_domain(domain: str) -> str:
    """The domain in its normal form (lower case, no final dot), or InputError.

    An IP address is refused by name: it would get a certificate with a DNS name
    that no client asks for, and a server block answering the host's own address.
    """
    normal = domain.strip().lower().rstrip(".")
    if _is_address(normal):
        raise InputError(
            f"{domain.strip()!r} is an IP address, not a domain name",
            hint="a portal is served by its domain name (e.g. upazila.district.gov.bd); "
            "give that, and point its DNS at the host",
        )
    if not DOMAIN.fullmatch(normal) or normal.rsplit(".", 1)[-1].isdigit():
        raise InputError(
            f"{domain!r} is not a valid domain name",
            hint="give a name like upazila.district.gov.bd: letters, digits and '-' "
            "in dot-separated labels",
        )
    return normal


def _is_address(text: str) -> bool:
    """An IPv4 or IPv6 address, or something only made of digits and dots (300.1.2.3)."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return bool(re.fullmatch(r"[0-9.]+", text)) and "." in text
    return True


def _problem(located: Located, at: tuple[str | int, ...], message: str, hint: str) -> InputError:
    return InputError(message, hint=hint, path=located.path, line=located.line(at))


def _text(located: Located, value: Any, at: tuple[str | int, ...], name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise _problem(located, at, f"field '{name}' must be text", f"write {name}: as plain text")
    return str(value).strip()


def _contacts(located: Located, value: Any, at: tuple[str | int, ...]) -> tuple[Contact, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _problem(
            located, at, "field 'contacts' must be a list", "write one '- name: …' item per contact"
        )
    found: list[Contact] = []
    for i, item in enumerate(value):
        where = (*at, i)
        if isinstance(item, str):
            found.append(Contact(name=item.strip()))
            continue
        if not isinstance(item, dict):
            raise _problem(
                located,
                where,
                "a contact must be a name or a mapping",
                "give name:, email:, phone:",
            )
        unknown = sorted(set(map(str, item)) - _CONTACT_FIELDS)
        if unknown:
            raise _problem(
                located,
                (*where, unknown[0]),
                f"contact field {unknown[0]!r} is not known",
                "a contact has name, email, phone and role",
            )
        name = _text(located, item.get("name"), (*where, "name"), "name")
        if not name:
            raise _problem(located, where, "a contact needs a name", "add name: to the contact")
        email = _text(located, item.get("email"), (*where, "email"), "email")
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise _problem(
                located, (*where, "email"), f"{email!r} is not an e-mail address", "fix the address"
            )
        found.append(
            Contact(
                name=name,
                email=email,
                phone=_text(located, item.get("phone"), (*where, "phone"), "phone"),
                role=_text(located, item.get("role"), (*where, "role"), "role"),
            )
        )
    return tuple(found)


def _portal(located: Located, item: Any, index: int) -> Portal:
    at: tuple[str | int, ...] = ("portals", index)
    if not isinstance(item, dict):
        raise _problem(
            located,
            at,
            "a portal must be a mapping of fields",
            "start each portal with '- domain: …'",
        )
    unknown = sorted(set(map(str, item)) - _FIELDS)
    if unknown:
        raise _problem(
            located,
            (*at, unknown[0]),
            f"field {unknown[0]!r} is not a portal field",
            "a portal has: " + ", ".join(sorted(_FIELDS)),
        )
    for required in ("domain", "host", "kind", "content"):
        if not _text(located, item.get(required), (*at, required), required):
            raise _problem(
                located, at, f"the portal has no '{required}'", f"add {required}: to the portal"
            )
    raw_domain = _text(located, item["domain"], (*at, "domain"), "domain")
    try:
        domain = check_domain(raw_domain)
    except InputError as exc:
        raise _problem(
            located, (*at, "domain"), f"field 'domain': {exc.message}", exc.hint or ""
        ) from None
    kind = _text(located, item["kind"], (*at, "kind"), "kind")
    if kind not in KINDS:
        raise _problem(located, (*at, "kind"), f"field 'kind' is {kind!r}", "kind is static or php")
    level = _text(located, item.get("level"), (*at, "level"), "level")
    if level and level not in LEVELS:
        raise _problem(
            located, (*at, "level"), f"field 'level' is {level!r}", "level is " + ", ".join(LEVELS)
        )
    place_text = _text(located, item.get("place"), (*at, "place"), "place")
    place = tuple(p.strip() for p in place_text.split("/") if p.strip()) if place_text else ()
    tls: ExternalTls | None = None
    raw_tls = item.get("tls")
    if raw_tls not in (None, "internal"):
        if not isinstance(raw_tls, dict) or set(map(str, raw_tls)) != {"cert", "key"}:
            raise _problem(
                located,
                (*at, "tls"),
                "field 'tls' must be 'internal' or a mapping of cert: and key:",
                "leave tls out for a department CA certificate, or give cert: and key: files",
            )
        tls = ExternalTls(
            cert=_text(located, raw_tls["cert"], (*at, "tls", "cert"), "tls.cert"),
            key=_text(located, raw_tls["key"], (*at, "tls", "key"), "tls.key"),
        )
    directives = item.get("nginx_directives") or []
    if not isinstance(directives, list) or not all(
        isinstance(d, str) and "\n" not in d and d.strip() for d in directives
    ):
        raise _problem(
            located,
            (*at, "nginx_directives"),
            "field 'nginx_directives' must be a list of one-line nginx directives",
            "write each directive as one list item, e.g. - client_max_body_size 64m;",
        )
    return Portal(
        domain=domain,
        host=_text(located, item["host"], (*at, "host"), "host"),
        kind=kind,
        content=_text(located, item["content"], (*at, "content"), "content"),
        office=_text(located, item.get("office"), (*at, "office"), "office"),
        place=place,
        level=level,
        contacts=_contacts(located, item.get("contacts"), (*at, "contacts")),
        tls=tls,
        nginx_directives=tuple(d.strip() for d in directives),
        line=located.line(at),
    )


def load_register(path: Path) -> Register:
    """The register at `path` (empty when the file does not exist), or the first mistake in it."""
    if not path.is_file():
        return Register(path)
    located = load_located(path)
    if located.duplicates:
        key, line, first = located.duplicates[0]
        raise InputError(
            f"field {key[-1]!r} is given twice (first on line {first})",
            hint="keep one of them",
            path=path,
            line=line,
        )
    data = located.data
    if data is None:
        return Register(path)
    if not isinstance(data, dict) or set(map(str, data)) - {"portals"}:
        raise InputError(
            "must be a mapping with one key, portals:",
            hint="start the file with 'portals:' and list one portal per item",
            path=path,
            line=1,
        )
    items = data.get("portals") or []
    if not isinstance(items, list):
        raise _problem(
            located, ("portals",), "portals: must be a list", "write '- domain: …' items"
        )
    register = Register(path)
    seen: dict[str, int | None] = {}
    for index, item in enumerate(items):
        portal = _portal(located, item, index)
        if portal.domain in seen:
            raise _problem(
                located,
                ("portals", index, "domain"),
                f"domain {portal.domain} is registered twice (first on line {seen[portal.domain]})",
                "a domain is served by one portal entry: remove or rename one",
            )
        seen[portal.domain] = portal.line
        register.portals.append(portal)
    return register


#: libyaml's dumper when PyYAML has it: about five times faster for a country-sized register.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

HEADER = """\
# The portal register: the office web portals of this environment and the hosts
# that serve them. Edited by `provision portal add|remove` (comments are not kept)
# or by hand; checked by `provision portal list`. See docs/portals.md.
"""


def render_register(register: Register) -> str:
    body = yaml.dump(
        {"portals": [p.record() for p in register.portals]},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return HEADER + "---\n" + body


def save_register(register: Register) -> None:
    """Write the register atomically: a temporary file beside it, then a rename."""
    path = register.path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_register(register)
    write_atomic(path, text, mode=0o644)
