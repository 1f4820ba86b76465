"""Descriptor image -> OpenAPI 3.0 document (a dict). Schemas follow the proto3
JSON mapping as the transcoder prints it (json_name, always_print_primitive_fields:
non-optional scalars and repeated fields are always present)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from google.api import annotations_pb2, field_behavior_pb2, http_pb2  # noqa: F401 (registers the extensions)
from google.protobuf import descriptor_pb2
from vipay.legacy.v1 import options_pb2 as legacy

from . import gateway, reference

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON prints 64-bit integers as strings.
    F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
}
WELL_KNOWN = {
    ".google.protobuf.Value": {},  # any JSON value, null included
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": {}},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    ".google.protobuf.Empty": {"type": "object"},
}
HTTP_BODY = ".google.api.HttpBody"
REQUIRED = field_behavior_pb2.FieldBehavior.REQUIRED
# What the live stack answered each operation (sdk/examples.py records it; `make examples`).
EXAMPLES = Path(__file__).with_name("examples.json")


def comment(text: str) -> str:
    """Proto comments are wrapped prose: one line per paragraph (Markdown)."""
    lines = [line.strip() for line in text.strip().splitlines() if not line.strip().startswith("buf:lint:")]
    paragraphs = " ".join(line or "\n\n" for line in lines).replace(" \n\n ", "\n\n")
    return paragraphs.strip()


class Image:
    """Every message, enum and comment of the image, by full name."""

    def __init__(self, data: bytes):
        self.files = descriptor_pb2.FileDescriptorSet.FromString(data).file
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.docs: dict[str, str] = {}
        for f in self.files:
            where = {tuple(loc.path): loc.leading_comments for loc in f.source_code_info.location}
            prefix = f".{f.package}" if f.package else ""
            for i, m in enumerate(f.message_type):
                self._message(f"{prefix}.{m.name}", m, (4, i), where)
            for e in f.enum_type:
                self.enums[f"{prefix}.{e.name}"] = e
            for s_i, s in enumerate(f.service):
                for m_i, m in enumerate(s.method):
                    self.docs[f"{f.package}.{s.name}.{m.name}"] = comment(where.get((6, s_i, 2, m_i), ""))

    def _message(self, name, m, path, where):
        self.messages[name] = m
        self.docs[name] = comment(where.get(path, ""))
        for j, fd in enumerate(m.field):
            self.docs[f"{name}.{fd.name}"] = comment(where.get(path + (2, j), ""))
        for k, nested in enumerate(m.nested_type):
            self._message(f"{name}.{nested.name}", nested, path + (3, k), where)
        for e in m.enum_type:
            self.enums[f"{name}.{e.name}"] = e


class Builder:
    def __init__(self, image: Image):
        self.image = image
        self.schemas: dict[str, dict] = {}
        self.owner: dict[str, str] = {}

    def ref(self, full_name: str, output: bool) -> dict:
        if full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[full_name])
        name = full_name.rsplit(".", 1)[1] + ("" if output else "Input")
        if self.owner.setdefault(name, full_name) != full_name:
            raise SystemExit(f"two messages named {name}: {full_name}, {self.owner[name]}")
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursion
            self.schemas[name] = self.message(full_name, output)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, full_name: str, output: bool, skip: frozenset[str] = frozenset()) -> dict:
        m = self.image.messages[full_name]
        props, required = {}, []
        for fd in m.field:
            if fd.name in skip:
                continue
            props[fd.json_name] = self.field(full_name, fd, output)
            if output and always_printed(fd, m):
                required.append(fd.json_name)
            if not output and REQUIRED in fd.options.Extensions[field_behavior_pb2.field_behavior]:
                required.append(fd.json_name)
        schema = {"type": "object"}
        if self.image.docs.get(full_name):
            schema["description"] = self.image.docs[full_name]
        if required:
            schema["required"] = required
        schema["properties"] = props
        if not output:
            # The transcoder refuses a field without a name (""), which OpenAPI 3.0 cannot say
            # (no propertyNames), and drops other unknown ones: a request sends what is declared.
            schema["additionalProperties"] = False
        return schema

    def value(self, fd: F, output: bool) -> dict:
        if fd.type == F.TYPE_MESSAGE:
            entry = self.image.messages[fd.type_name]
            if entry.options.map_entry:
                return {"type": "object", "additionalProperties": self.value(entry.field[1], output)}
            return self.ref(fd.type_name, output)
        if fd.type == F.TYPE_ENUM:
            return {"type": "string", "enum": [v.name for v in self.image.enums[fd.type_name].value]}
        return dict(SCALARS[fd.type])

    def field(self, owner: str, fd: F, output: bool) -> dict:
        declared = gateway.FIELD_SCHEMAS.get(f"{owner.lstrip('.')}.{fd.name}")
        schema = dict(declared) if declared else self.value(fd, output)
        if fd.label == F.LABEL_REPEATED and not is_map(self.image, fd):
            schema = {"type": "array", "items": schema}
        doc = self.image.docs.get(f"{owner}.{fd.name}")
        if doc:
            # $ref siblings are ignored in OpenAPI 3.0: wrap them.
            schema = {"allOf": [schema], "description": doc} if "$ref" in schema else {**schema, "description": doc}
        return schema


def is_map(image: Image, fd: F) -> bool:
    return fd.type == F.TYPE_MESSAGE and image.messages[fd.type_name].options.map_entry


def always_printed(fd: F, m: descriptor_pb2.DescriptorProto) -> bool:
    """always_print_primitive_fields: scalars outside a oneof, repeated and map fields."""
    if fd.label == F.LABEL_REPEATED:
        return True
    return fd.type not in (F.TYPE_MESSAGE,) and not fd.HasField("oneof_index")


def http_rule(method: descriptor_pb2.MethodDescriptorProto):
    rule = method.options.Extensions[annotations_pb2.http]
    kind = rule.WhichOneof("pattern")
    return (kind, getattr(rule, kind), rule.body) if kind else None


def build(data: bytes) -> dict:
    image = Image(data)
    b = Builder(image)
    examples = json.loads(EXAMPLES.read_text()) if EXAMPLES.exists() else {}
    b.schemas.update(gateway.ENVELOPES)
    b.schemas.update(gateway.SHARED_SCHEMAS)
    paths: dict[str, dict] = {}
    tags: set[str] = set()
    for f in image.files:
        for s in f.service:
            for method in s.method:
                rule = http_rule(method)
                if rule is None:
                    continue  # gRPC only
                key = f"{f.package}.{s.name}.{method.name}"
                if not method.options.HasExtension(legacy.operation):
                    raise SystemExit(f"{key} is bound to HTTP but declares no (vipay.legacy.v1.operation)")
                op = gateway.op_for(key, method.options.Extensions[legacy.operation])
                path, verb, operation = operation_for(b, key, method, rule, op)
                if method.name in examples:
                    with_example(operation, examples[method.name])
                paths.setdefault(path, {})[verb] = operation
                tags.add(op.tag)
    return reference.polish({
        "openapi": "3.0.3",
        "info": {"title": gateway.TITLE, "version": gateway.VERSION, "description": gateway.DESCRIPTION},
        "servers": [{"url": "http://127.0.0.1:8080", "description": "make run"}],
        "tags": [{"name": family.tag} for family in gateway.FAMILIES.values() if family.tag in tags],
        "paths": paths,
        "components": {"schemas": b.schemas, "securitySchemes": gateway.SECURITY_SCHEMES},
    }, b, gateway.SIGNING_HEADERS)


def with_example(operation: dict, recorded: dict) -> None:
    """The recorded answer under its status and content type, and what was sent (JSON bodies)."""
    content = operation["responses"].get(str(recorded["status"]), {}).get("content") or {}
    media = content.get(recorded["contentType"])
    if media is None:
        if recorded["response"] is not None:
            raise SystemExit(f"{operation['operationId']}: the stack answered {recorded['status']} "
                             f"{recorded['contentType']}, which the spec does not document")
    elif recorded["response"] is not None:  # a copy: responses share their parts (gateway.ENVOY_400)
        content[recorded["contentType"]] = {**media, "example": recorded["response"]}
    body = operation.get("requestBody", {}).get("content") or {}
    if "application/json" in body and recorded.get("request") is not None:
        body["application/json"] = {**body["application/json"], "example": recorded["request"]}


def operation_for(b: Builder, key: str, method, rule, op: gateway.Op):
    verb, template, body = rule
    request = b.image.messages[method.input_type]
    fields = {fd.name: fd for fd in request.field}
    path_vars = re.findall(r"{([^}=]+)}", template)
    path = re.sub(r"{([^}=]+)}", lambda m: "{" + fields[m.group(1)].json_name + "}", template)
    params = [
        {"name": fields[v].json_name, "in": "path", "required": True, "schema": b.value(fields[v], False),
         **({"description": b.image.docs[f"{method.input_type}.{v}"]}
            if b.image.docs.get(f"{method.input_type}.{v}") else {})}
        for v in path_vars
    ]
    if op.doc.route:
        path = op.doc.route[0]
        params.append({"name": op.doc.route[1], "in": "query", "required": True,
                       "schema": {"type": "string", "enum": [op.doc.route[2]]},
                       "description": f"The route; the gateway serves it from {template}."})
    if body != "*":
        for fd in request.field:
            if fd.name in path_vars or fd.name == body or fd.type == F.TYPE_MESSAGE:
                continue
            schema = b.field(method.input_type, fd, False)
            params.append({"name": fd.json_name, "in": "query", "required": False,
                           "schema": {k: v for k, v in schema.items() if k != "description"},
                           **({"description": schema["description"]} if "description" in schema else {})})
    params.extend(dict(h) for h in op.doc.headers)
    operation: dict = {"operationId": method.name, "tags": [op.tag]}
    doc = b.image.docs.get(key)
    if doc:
        operation["description"] = doc
    operation["x-grpc-method"] = f"/{key.rsplit('.', 1)[0]}/{method.name}"
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = request_body(b, key, method, request, body, path_vars, op)
    operation["responses"] = responses(b, method, op)
    if op.secured:
        operation["security"] = [dict(s) for s in gateway.USER]
    return path, verb, operation


def request_body(b: Builder, key, method, request, body, path_vars, op) -> dict:
    if body == "*":
        schema = b.message(method.input_type, False, frozenset(path_vars))
        return {"required": True, "content": {"application/json": {"schema": schema}}}
    fd = next(f for f in request.field if f.name == body)
    if fd.type_name == HTTP_BODY:
        raw = gateway.RAW_BODIES.get(key, {})
        return {"required": True, "description": "The raw body, handed to the server unparsed.",
                "content": {ct: {"schema": raw if ct == "application/json" else {"type": "string"}}
                            for ct in op.doc.consumes}}
    return {"required": True, "content": {"application/json": {"schema": b.field(method.input_type, fd, False)}}}


def raw_schema(content_type: str) -> dict:
    if content_type == "application/json":
        return {}  # whatever JSON the provider expects back
    return {"type": "string", **({"format": "binary"} if content_type.startswith("image/") else {})}


def error_ref(family: gateway.Family) -> dict:
    return {"$ref": f"#/components/schemas/{family.error_schema}"}


def responses(b: Builder, method, op: gateway.Op) -> dict:
    out: dict[str, dict] = {}
    if method.output_type == HTTP_BODY:
        content = {ct: {"schema": raw_schema(ct)} for ct in op.doc.produces}
        if op.family.errors_in_200:  # a refusal is the family's JSON envelope, still HTTP 200
            content["application/json"] = {"schema": error_ref(op.family)}
    elif op.success == 204:
        content = None
    else:
        if op.unwrap:
            fd = next(f for f in b.image.messages[method.output_type].field if f.json_name == op.unwrap)
            schema = {"type": "array", "items": b.value(fd, True)}
        else:
            schema = b.ref(method.output_type, True)
        if op.family.errors_in_200:
            schema = {"anyOf": [schema, error_ref(op.family)]}
        content = {"application/json": {"schema": schema}}
    success = {"description": "Success" + (" (errors too: see the envelope)" if op.family.errors_in_200 else "")}
    if content:
        success["content"] = content
    out[str(op.success)] = success
    if not op.envoy_400_enveloped:
        out["400"] = gateway.ENVOY_400
    codes = set(op.family.error_codes) | set(op.extra)
    if op.secured and op.family.error_codes:
        codes.add(401)
    elif not op.secured:
        codes.discard(401)
    for code in sorted(codes):
        if code == 400 and code not in op.extra:
            continue
        described = op.extra.get(code, "Refused (the family's error envelope).")
        error = {"description": described}
        if op.family.error_schema:
            error["content"] = {"application/json": {"schema": error_ref(op.family)}}
        if code == 400:  # both the gateway's text and the server's envelope
            error["content"]["text/plain"] = gateway.ENVOY_400["content"]["text/plain"]
        out[str(code)] = error
    return dict(sorted(out.items()))
