"""policy.json (containers-policy.json(5)) parsed into frozen requirement objects.

The parser is as strict as containers/image's: unknown keys, duplicated keys, wrong types,
an empty requirement list and unknown ``type`` values are errors, because a typo in a security
policy must never silently widen it. Every error names the file and the line:
``/etc/containers/policy.json:12: Unknown policy requirement type "signedby"``.

Where the policy comes from (skopeo's global options, resolved by :func:`policy_path`):
``--policy FILE``, else ``$HOME/.config/containers/policy.json`` when it exists, else
``/etc/containers/policy.json``; a missing file is an error, as in skopeo.
``--insecure-policy`` replaces the policy by one that accepts anything
(:func:`insecure_policy`).

Scopes: ``transports`` maps a transport name to scopes (``docker``: ``host``, ``host/ns``,
``host/ns/repo``, ``host/ns/repo:tag``, ``*.domain``; ``dir``/``oci``: absolute paths; see
:mod:`asyncsync.signature.scopes`), each to a list of requirements. Scope names are validated per
transport as containers/image does.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from asyncsync.errors import InvalidReferenceError, PolicyError
from asyncsync.reference import ImageName, parse_reference
from asyncsync.signature.identity import (
    ExactReference,
    ExactRepository,
    IdentityRule,
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    RemapIdentity,
    valid_remap_prefix,
)
from asyncsync.signature.json_lines import JSONLinesError, Node, parse
from asyncsync.signature.scopes import validate_scope

SYSTEM_POLICY_PATH = "/etc/containers/policy.json"
USER_POLICY_PATH = os.path.join(".config", "containers", "policy.json")

KeyType = Literal["GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs"]
_KEY_TYPES: tuple[str, ...] = ("GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs")


@dataclass(frozen=True, slots=True)
class InsecureAcceptAnything:
    """Any image is accepted, signed or not."""

    line: int = 0


@dataclass(frozen=True, slots=True)
class Reject:
    """Every image is refused."""

    line: int = 0


@dataclass(frozen=True, slots=True)
class SignedBy:
    """A simple-signing (GPG) signature by one of the keys, for an identity ``signed_identity`` accepts.

    Exactly one of ``key_path``, ``key_paths``, ``key_data`` is set; key files are read when the
    requirement is first evaluated (as containers/image), not when the policy is parsed.
    """

    key_type: KeyType
    signed_identity: IdentityRule
    key_path: str | None = None
    key_paths: tuple[str, ...] | None = None
    key_data: bytes | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class SigstoreSigned:
    """A sigstore (cosign) signature verified with the public key at ``key_path`` or in ``key_data``."""

    signed_identity: IdentityRule
    key_path: str | None = None
    key_data: bytes | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class SignedBaseLayer:
    """Parsed for compatibility; containers/image does not implement it and refuses every image."""

    base_layer_identity: IdentityRule
    line: int = 0


Requirement = InsecureAcceptAnything | Reject | SignedBy | SigstoreSigned | SignedBaseLayer
Requirements = tuple[Requirement, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy: ``default`` and ``transports[transport][scope]`` requirement lists."""

    default: Requirements
    transports: Mapping[str, Mapping[str, Requirements]] = field(default_factory=lambda: MappingProxyType({}))
    path: str = ""


def insecure_policy() -> Policy:
    """What ``--insecure-policy`` uses: accept anything."""
    return Policy(default=(InsecureAcceptAnything(),), path="--insecure-policy")


def policy_path(explicit: str | None, home: str | None = None) -> str:
    """skopeo's choice: ``--policy``, else the user's file if it exists, else the system file."""
    if explicit:
        return explicit
    home = home if home is not None else os.path.expanduser("~")
    user = os.path.join(home, USER_POLICY_PATH)
    if os.path.exists(user):
        return user
    return SYSTEM_POLICY_PATH


def load_policy(path: str) -> Policy:
    """Read and parse the policy at ``path``; every problem is one :class:`PolicyError` line."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise PolicyError(f"loading trust policy: open {path}: no such file or directory") from None
    except OSError as exc:
        raise PolicyError(f"loading trust policy: {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: invalid policy: not UTF-8 text") from None
    return parse_policy(text, path)


class _Reader:
    """Turns :class:`Node` trees into requirement objects, raising ``path:line: message``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int, message: str) -> PolicyError:
        return PolicyError(f"{self.path}:{line}: invalid policy: {message}")

    def object(self, node: Node, what: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        if not isinstance(node.value, dict):
            raise self.fail(node.line, f"{what} must be a JSON object, not {node.kind}")
        assert node.key_lines is not None
        for key in node.value:
            if key not in allowed:
                raise self.fail(node.key_lines[key], f'Unknown key "{key}" in {what}')
        for key in required:
            if key not in node.value:
                raise self.fail(node.line, f'Key "{key}" missing in {what}')

    def string(self, node: Node, what: str) -> str:
        if not isinstance(node.value, str):
            raise self.fail(node.line, f"{what} must be a string, not {node.kind}")
        return node.value

    def policy(self, root: Node) -> Policy:
        self.object(root, "the policy", ("default", "transports"))
        members: dict[str, Node] = root.value
        if "default" not in members:
            raise self.fail(root.line, "Default policy is missing")
        default = self.requirements(members["default"], '"default"')
        transports: dict[str, Mapping[str, Requirements]] = {}
        if "transports" in members:
            node = members["transports"]
            if node.value is not None:  # Go's json leaves a map untouched for null
                self.object(node, '"transports"', tuple(node.value) if isinstance(node.value, dict) else ())
                for name, scopes_node in node.value.items():
                    transports[name] = self.scopes(name, scopes_node)
        return Policy(default, MappingProxyType(transports), self.path)

    def scopes(self, transport: str, node: Node) -> Mapping[str, Requirements]:
        what = f'transport "{transport}"'
        if node.value is None:
            return MappingProxyType({})
        if not isinstance(node.value, dict):
            raise self.fail(node.line, f"{what} must be a JSON object of scopes, not {node.kind}")
        assert node.key_lines is not None
        scopes: dict[str, Requirements] = {}
        for scope, requirements in node.value.items():
            if scope:
                problem = validate_scope(transport, scope)
                if problem is not None:
                    raise self.fail(node.key_lines[scope], f"{what}: {problem}")
            scopes[scope] = self.requirements(requirements, f'{what} scope "{scope}"')
        return MappingProxyType(scopes)

    def requirements(self, node: Node, what: str) -> Requirements:
        if not isinstance(node.value, list):
            raise self.fail(node.line, f"{what} must be a list of requirements, not {node.kind}")
        if not node.value:
            raise self.fail(node.line, f"{what}: List of verification policy requirements must not be empty")
        return tuple(self.requirement(item) for item in node.value)

    def requirement(self, node: Node) -> Requirement:
        if not isinstance(node.value, dict):
            raise self.fail(node.line, f"a policy requirement must be a JSON object, not {node.kind}")
        members: dict[str, Node] = node.value
        kind = self.string(members["type"], '"type"') if "type" in members else ""
        line = node.line
        if kind == "insecureAcceptAnything":
            self.object(node, kind, ("type",))
            return InsecureAcceptAnything(line)
        if kind == "reject":
            self.object(node, kind, ("type",))
            return Reject(line)
        if kind == "signedBy":
            return self.signed_by(node)
        if kind == "sigstoreSigned":
            return self.sigstore_signed(node)
        if kind == "signedBaseLayer":
            self.object(node, kind, ("type", "baseLayerIdentity"), ("baseLayerIdentity",))
            return SignedBaseLayer(self.identity(members["baseLayerIdentity"]), line)
        raise self.fail(line, f'Unknown policy requirement type "{kind}"')

    def key_data(self, node: Node) -> bytes:
        text = self.string(node, '"keyData"')
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(node.line, '"keyData" is not valid base64') from None

    def signed_by(self, node: Node) -> SignedBy:
        keys = ("keyPath", "keyPaths", "keyData")
        self.object(node, "signedBy", ("type", "keyType", "signedIdentity", *keys))
        members: dict[str, Node] = node.value
        key_type = self.string(members["keyType"], '"keyType"') if "keyType" in members else ""
        if key_type not in _KEY_TYPES:
            where = members["keyType"].line if "keyType" in members else node.line
            raise self.fail(where, f'Unrecognized keyType value "{key_type}"')
        given = [key for key in keys if key in members]
        if len(given) != 1:
            detail = "none of them present" if not given else "more than one present"
            raise self.fail(
                node.line, f"Exactly one of keyPath, keyPaths and keyData must be specified, {detail}"
            )
        identity = (
            self.identity(members["signedIdentity"])
            if "signedIdentity" in members
            else MatchRepoDigestOrExact()
        )
        key_path = key_paths = key_data = None
        if "keyPath" in members:
            key_path = self.string(members["keyPath"], '"keyPath"')
            if not key_path:
                raise self.fail(members["keyPath"].line, '"keyPath" is empty')
        elif "keyPaths" in members:
            paths = members["keyPaths"]
            if not isinstance(paths.value, list):
                raise self.fail(paths.line, f'"keyPaths" must be a list of strings, not {paths.kind}')
            key_paths = tuple(self.string(item, '"keyPaths" entry') for item in paths.value)
        else:
            key_data = self.key_data(members["keyData"])
        return SignedBy(key_type, identity, key_path, key_paths, key_data, node.line)  # type: ignore[arg-type]

    def sigstore_signed(self, node: Node) -> SigstoreSigned:
        members: dict[str, Node] = node.value
        for unsupported in ("fulcio", "rekorPublicKeyPath", "rekorPublicKeyData"):
            if unsupported in members:
                raise self.fail(
                    node.key_lines[unsupported] if node.key_lines else node.line,
                    f'sigstoreSigned: "{unsupported}" (Fulcio certificates and Rekor) is not supported '
                    "by asyncsync; use keyPath or keyData with a public key",
                )
        self.object(node, "sigstoreSigned", ("type", "keyPath", "keyData", "signedIdentity"))
        if "keyPath" in members and "keyData" in members:
            raise self.fail(node.line, "keyPath and keyData cannot be used simultaneously")
        if "keyPath" not in members and "keyData" not in members:
            raise self.fail(node.line, "At least one of keyPath and keyData must be specified")
        identity = (
            self.identity(members["signedIdentity"])
            if "signedIdentity" in members
            else MatchRepoDigestOrExact()
        )
        if "keyPath" in members:
            path = self.string(members["keyPath"], '"keyPath"')
            return SigstoreSigned(identity, key_path=path, line=node.line)
        return SigstoreSigned(identity, key_data=self.key_data(members["keyData"]), line=node.line)

    def reference(self, node: Node, what: str) -> ImageName:
        text = self.string(node, what)
        try:
            return parse_reference(text, default_tag=False)
        except InvalidReferenceError as exc:
            raise self.fail(node.line, f"Invalid format of {what} {text}: {exc}") from None

    def identity(self, node: Node) -> IdentityRule:
        if not isinstance(node.value, dict):
            raise self.fail(node.line, f'"signedIdentity" must be a JSON object, not {node.kind}')
        members: dict[str, Node] = node.value
        kind = self.string(members["type"], '"type"') if "type" in members else ""
        simple: dict[str, IdentityRule] = {
            "matchExact": MatchExact(),
            "matchRepoDigestOrExact": MatchRepoDigestOrExact(),
            "matchRepository": MatchRepository(),
        }
        if kind in simple:
            self.object(node, kind, ("type",))
            return simple[kind]
        if kind == "exactReference":
            self.object(node, kind, ("type", "dockerReference"), ("dockerReference",))
            name = self.reference(members["dockerReference"], "dockerReference")
            if name.tag is None and name.digest is None:
                raise self.fail(node.line, f"dockerReference {name} contains neither a tag nor digest")
            return ExactReference(name)
        if kind == "exactRepository":
            self.object(node, kind, ("type", "dockerRepository"), ("dockerRepository",))
            return ExactRepository(self.reference(members["dockerRepository"], "dockerRepository"))
        if kind == "remapIdentity":
            self.object(node, kind, ("type", "prefix", "signedPrefix"), ("prefix", "signedPrefix"))
            prefix = self.string(members["prefix"], '"prefix"')
            signed_prefix = self.string(members["signedPrefix"], '"signedPrefix"')
            for value, key in ((prefix, "prefix"), (signed_prefix, "signedPrefix")):
                if not valid_remap_prefix(value):
                    raise self.fail(members[key].line, f'{key} "{value}" is not valid')
            return RemapIdentity(prefix, signed_prefix)
        raise self.fail(node.line, f'Unknown policy reference match type "{kind}"')


def parse_policy(text: str, path: str = "policy.json") -> Policy:
    """Parse policy JSON ``text`` (from ``path``, named in errors)."""
    try:
        root = parse(text)
    except JSONLinesError as exc:
        raise PolicyError(f"{path}:{exc.line}: invalid policy: {exc.message}") from None
    return _Reader(path).policy(root)
