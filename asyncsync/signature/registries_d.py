"""registries.d (containers-registries.d(5)): where a registry's signatures live.

Every ``*.yaml`` file of the directory is read and merged; a ``default-docker`` section or a
``docker`` scope defined in two files is an error, as in containers/image. For an image the most
specific ``docker`` scope that sets the wanted key wins (the same scopes as policy.json:
``host/ns/repo:tag``, ``host/ns/repo``, ..., ``host``, ``*.domain``), then ``default-docker``:

* reading: ``lookaside`` (or its older name ``sigstore``);
* writing: ``lookaside-staging`` (``sigstore-staging``), else the reading URL;
* ``use-sigstore-attachments``: read and write cosign ``.sig`` attachments in the registry.

Without any configured URL the built-in store is used: ``file://$HOME/.local/share/containers/
sigstore`` (``/var/lib/containers/sigstore`` for root). A signature's URL is
``BASE/REPOSITORY-PATH@sha256=HEX/signature-N`` (N from 1). Which directory: ``--registries.d``,
else ``$HOME/.config/containers/registries.d`` when it exists, else
``/etc/containers/registries.d`` (:func:`registries_d_path`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from asyncsync.digest import Digest
from asyncsync.errors import PolicyError
from asyncsync.reference import ImageName
from asyncsync.signature.scopes import docker_identity, docker_namespaces

SYSTEM_REGISTRIES_D = "/etc/containers/registries.d"
USER_REGISTRIES_D = os.path.join(".config", "containers", "registries.d")
_KEYS = ("lookaside", "lookaside-staging", "sigstore", "sigstore-staging", "use-sigstore-attachments")


@dataclass(frozen=True, slots=True)
class Namespace:
    """One ``docker`` scope's (or ``default-docker``'s) settings."""

    lookaside: str = ""
    lookaside_staging: str = ""
    sigstore: str = ""
    sigstore_staging: str = ""
    use_sigstore_attachments: bool | None = None

    def url(self, write: bool) -> str:
        if write and (self.lookaside_staging or self.sigstore_staging):
            return self.lookaside_staging or self.sigstore_staging
        return self.lookaside or self.sigstore


def _default_store(home: str | None = None) -> str:
    if os.geteuid() == 0:
        return "file:///var/lib/containers/sigstore"
    home = home if home is not None else os.path.expanduser("~")
    return "file://" + os.path.join(home, ".local", "share", "containers", "sigstore")


@dataclass(frozen=True, slots=True)
class RegistriesD:
    """The merged configuration of one registries.d directory."""

    default_docker: Namespace | None = None
    docker: Mapping[str, Namespace] = field(default_factory=lambda: MappingProxyType({}))
    default_store: str = field(default_factory=_default_store)

    def _scopes(self, name: ImageName) -> list[Namespace]:
        found = [
            self.docker[s] for s in (docker_identity(name), *docker_namespaces(name)) if s in self.docker
        ]
        if self.default_docker is not None:
            found.append(self.default_docker)
        return found

    def lookaside_base(self, name: ImageName, *, write: bool) -> str:
        """``BASE/REPOSITORY-PATH`` for ``name`` (reading, or writing with ``write``)."""
        base = next((url for ns in self._scopes(name) if (url := ns.url(write))), self.default_store)
        scheme = urlsplit(base).scheme
        if scheme not in ("file", "http", "https"):
            raise PolicyError(f"Unsupported scheme in signature storage URL {base}")
        return f"{base.rstrip('/')}/{name.repository}"

    def use_sigstore_attachments(self, name: ImageName) -> bool:
        for namespace in self._scopes(name):
            if namespace.use_sigstore_attachments is not None:
                return namespace.use_sigstore_attachments
        return False


def signature_url(base: str, digest: Digest, index: int) -> str:
    """The URL of signature ``index`` (0-based) of ``digest`` under a lookaside ``base``."""
    return f"{base}@{digest.algorithm}={digest.hex}/signature-{index + 1}"


def registries_d_path(explicit: str | None, home: str | None = None) -> str:
    """``--registries.d``, else the user's directory if it exists, else the system one."""
    if explicit:
        return explicit
    home = home if home is not None else os.path.expanduser("~")
    user = os.path.join(home, USER_REGISTRIES_D)
    return user if os.path.isdir(user) else SYSTEM_REGISTRIES_D


def _namespace(value: Any, where: str) -> Namespace:
    if value is None:
        return Namespace()
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: must be a mapping")
    settings: dict[str, Any] = {}
    for key in _KEYS:
        item = value.get(key)
        if item is None:
            continue
        if key == "use-sigstore-attachments":
            if not isinstance(item, bool):
                raise PolicyError(f"{where}: use-sigstore-attachments must be true or false")
        elif not isinstance(item, str):
            raise PolicyError(f"{where}: {key} must be a URL string")
        settings[key.replace("-", "_")] = item
    return Namespace(**settings)


def load_registries_d(directory: str) -> RegistriesD:
    """Read and merge ``directory/*.yaml``; a missing directory is an empty configuration."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return RegistriesD()
    except OSError as exc:
        raise PolicyError(f"registries.d {directory}: {exc.strerror or exc}") from None
    default: Namespace | None = None
    default_from = ""
    docker: dict[str, Namespace] = {}
    docker_from: dict[str, str] = {}
    for name in names:
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as handle:
                document = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise PolicyError(f"parsing {path}{line}: {problem}") from None
        except OSError as exc:
            raise PolicyError(f"reading {path}: {exc.strerror or exc}") from None
        if document is None:
            continue
        if not isinstance(document, dict):
            raise PolicyError(f"parsing {path}: not a mapping")
        if document.get("default-docker") is not None:
            if default is not None:
                raise PolicyError(
                    f'Error parsing signature storage configuration: "default-docker" defined both in '
                    f'"{default_from}" and "{path}"'
                )
            default, default_from = _namespace(document["default-docker"], f"{path}: default-docker"), path
        scopes = document.get("docker") or {}
        if not isinstance(scopes, dict):
            raise PolicyError(f"parsing {path}: docker must be a mapping of scopes")
        for scope, settings in scopes.items():
            scope = str(scope)
            if scope in docker:
                raise PolicyError(
                    "Error parsing signature storage configuration: "
                    f'"docker" namespace "{scope}" defined both in "{docker_from[scope]}" and "{path}"'
                )
            docker[scope] = _namespace(settings, f"{path}: docker: {scope}")
            docker_from[scope] = path
    return RegistriesD(default, MappingProxyType(docker))
