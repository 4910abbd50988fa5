"""Agent parameters: a small JSON Schema subset, checked and turned into a form.

The schema an agent declares is the one shown by the API and the one the trigger form is
built from, so the browser, the API and schedules validate parameters identically:

    {"type": "object",
     "properties": {
        "days": {"type": "integer", "title": "Keep days", "default": 90, "minimum": 1},
        "mode": {"type": "string", "enum": ["fast", "full"], "default": "fast"},
        "since": {"type": "string", "format": "date"},
        "advisors": {"type": "array", "items": {"type": "integer"}},
        "notify": {"type": "boolean", "default": false}},
     "required": ["days"]}

Supported: integer, number, string (enum, format date, minLength/maxLength), boolean,
array of integer or string (enum allowed); title, description, default, minimum, maximum.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

SCALAR_TYPES = {"integer", "number", "string", "boolean"}


class SchemaError(ValueError):
    """An agent declared a parameter schema this module does not understand."""


def check_schema(schema: dict) -> dict:
    """Return `schema` in its full form ({"type": "object", ...}) or raise SchemaError."""
    if not schema:
        return {"type": "object", "properties": {}, "required": []}
    if schema.get("type", "object") != "object" or not isinstance(schema.get("properties", {}), dict):
        raise SchemaError('a parameter schema is {"type": "object", "properties": {...}}')
    properties = schema.get("properties", {})
    for name, prop in properties.items():
        kind = prop.get("type")
        if kind == "array":
            if prop.get("items", {}).get("type") not in {"integer", "string"}:
                raise SchemaError(f"parameter {name!r}: arrays hold integers or strings")
        elif kind not in SCALAR_TYPES:
            raise SchemaError(f"parameter {name!r}: unsupported type {kind!r}")
    required = list(schema.get("required", []))
    unknown = set(required) - set(properties)
    if unknown:
        raise SchemaError(f"required parameters not declared: {', '.join(sorted(unknown))}")
    return {"type": "object", "properties": properties, "required": required}


class CommaListField(forms.CharField):
    """A list typed as comma-separated text in the form, or sent as a JSON list by the API."""

    def __init__(self, *, item_type: str, **kwargs: Any) -> None:
        self.item_type = item_type
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value):
        if value in (None, "", []):
            return []
        items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",") if v.strip()]
        if self.item_type == "integer":
            try:
                return [int(v) for v in items]
            except (TypeError, ValueError):
                raise ValidationError("Enter whole numbers separated by commas.", code="invalid") from None
        return [str(v) for v in items]

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")


def _field(name: str, prop: dict, required: bool) -> forms.Field:
    kind = prop.get("type")
    common = {
        "label": prop.get("title") or name.replace("_", " ").capitalize(),
        "help_text": prop.get("description", ""),
        "required": required,
        "initial": prop.get("default"),
    }
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "integer":
        return forms.IntegerField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "array":
        items = prop.get("items", {})
        if items.get("enum"):
            return forms.TypedMultipleChoiceField(
                choices=[(v, v) for v in items["enum"]],
                coerce=int if items.get("type") == "integer" else str,
                widget=forms.CheckboxSelectMultiple,
                **common,
            )
        return CommaListField(item_type=items.get("type", "string"), **common)
    if prop.get("enum"):
        choices = [(v, v) for v in prop["enum"]]
        if not required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(choices=choices, **common)
    if prop.get("format") == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    return forms.CharField(min_length=prop.get("minLength"), max_length=prop.get("maxLength"), **common)


class ParamsForm(forms.Form):
    """The fields of one agent's parameter schema, plus nothing else."""

    def __init__(self, schema: dict, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = check_schema(schema)
        required = set(self.schema["required"])
        for name, prop in self.schema["properties"].items():
            self.fields[name] = _field(name, prop, name in required)

    def json_data(self) -> dict:
        """Return the cleaned values as JSON-ready data, leaving out empty optional ones."""
        out = {}
        for name, value in self.cleaned_data.items():
            if value in (None, "", []) and name not in self.schema["required"]:
                default = self.schema["properties"][name].get("default")
                if default is None:
                    continue
                value = default
            if isinstance(value, datetime.date):
                value = value.isoformat()
            out[name] = value
        return out


class ParamsInvalid(Exception):
    """Parameters that do not fit the schema; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def clean_params(schema: dict, data: dict | None) -> dict:
    """Validate JSON parameters against `schema`; return them with defaults filled in."""
    data = dict(data or {})
    schema = check_schema(schema)
    unknown = sorted(set(data) - set(schema["properties"]))
    if unknown:
        raise ParamsInvalid({name: ["This agent has no such parameter."] for name in unknown})
    form_data = {}
    for name, value in data.items():
        prop = schema["properties"][name]
        if prop.get("type") == "boolean" and not isinstance(value, bool):
            raise ParamsInvalid({name: ["Must be true or false."]})
        if prop.get("type") in {"integer", "number"} and isinstance(value, bool):
            raise ParamsInvalid({name: ["Must be a number."]})
        if prop.get("type") == "string" and value is not None and not isinstance(value, str):
            raise ParamsInvalid({name: ["Must be a string."]})
        if prop.get("type") == "array" and value is not None and not isinstance(value, list | str):
            raise ParamsInvalid({name: ["Must be a list (or comma-separated text)."]})
        form_data[name] = value
    for name, prop in schema["properties"].items():
        if name not in form_data and "default" in prop:
            form_data[name] = prop["default"]
    form = ParamsForm(schema, data=form_data)
    if not form.is_valid():
        raise ParamsInvalid({name: [str(m) for m in messages] for name, messages in form.errors.items()})
    return form.json_data()
