"""What the contract-checking fakes (Discourse, Twilio) share: finding the documented operation
of a request in an OpenAPI description, and reporting where a body breaks a JSON Schema."""
from __future__ import annotations

import re
from dataclasses import dataclass


class ContractViolation(AssertionError):
    """A request or response that the vendor's published API description does not describe."""


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    spec: dict
    path_params: dict


def template_regex(template: str) -> re.Pattern:
    """``/t/{id}.json`` -> a regex capturing ``id``."""
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            pattern += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}$")


def schema_errors(validator, instance) -> list[str]:
    """The first ten problems ``validator`` (a jsonschema validator) finds, each with its path."""
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))][:10]


class OpenApiPaths:
    """The operations of an OpenAPI description, matched by method and path."""

    source = "the API description"  # named in "unknown path" errors

    def __init__(self, spec: dict):
        self.spec = spec
        # Literal templates first, then by fewest parameters: /t/external_id/{x}.json before /t/{id}.json.
        self.templates = sorted(((t, template_regex(t)) for t in spec["paths"]),
                                key=lambda item: (item[0].count("{"), -len(item[0])))

    def operation(self, method: str, path: str) -> Operation:
        for template, regex in self.templates:
            match = regex.match(path)
            if match:
                ops = self.spec["paths"][template]
                op = ops.get(method.lower())
                if op is None:
                    raise ContractViolation(
                        f"{method} {path}: {template} has no {method} operation (has {sorted(ops)})")
                return Operation(template, method.lower(), op, match.groupdict())
        raise ContractViolation(f"{method} {path}: unknown path, not in {self.source}")
