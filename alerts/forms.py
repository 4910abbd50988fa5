"""Forms of the alerting pages (people's actions, silences) and of its admin editors.

The forms only read and shape input; the rules (what may be acknowledged, how long a
silence may last, what makes a rule or a channel valid) live in alerts.services,
alerts.evaluation and alerts.transports, whose ValidationErrors come back as field errors.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from .matchers import MatcherError, parse_matchers
from .models import SLO, Channel, MaintenanceWindow, Rule

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_errors(form: forms.BaseForm, error: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form: each key on its field, the rest on the form."""
    aliases = aliases or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, messages in error.message_dict.items():
        name = aliases.get(key, key)
        form.add_error(name if name in form.fields else None, messages)


# --- people's actions on an alert ---------------------------------------------------------------


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(
        required=False, max_length=2000, label="Comment",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What you are doing about it (optional)"}),
    )


class CommentForm(forms.Form):
    comment = forms.CharField(
        max_length=4000, label="Comment",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "A note for the timeline"}),
        error_messages={"required": "Write a comment."},
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=2000, label="Note",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why it is resolved (optional)"}),
    )


ALERT_SILENCE_CHOICES = [
    ("1h", "1 hour"), ("4h", "4 hours"), ("24h", "24 hours"), ("custom", "Until a time…"),
    ("resolved", "Until it resolves"),
]
HOURS = {"1h": 1, "2h": 2, "4h": 4, "8h": 8, "24h": 24, "72h": 72, "168h": 168}


class _LocalDateTimeInput(forms.DateTimeInput):
    """A datetime-local input (in the site's time zone)."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class SilenceAlertForm(forms.Form):
    """Silence one alert: for a time, until a time, or until it resolves."""

    duration = forms.ChoiceField(choices=ALERT_SILENCE_CHOICES, initial="4h", label="For")
    until = forms.DateTimeField(required=False, label="Until", widget=_LocalDateTimeInput(),
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
    end_on_resolve = forms.BooleanField(required=False, initial=True, label="Also end it when the alert resolves")
    comment = forms.CharField(
        max_length=2000, label="Why",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why it may stay quiet (required)"}),
        error_messages={"required": "Say why: the next person on call will read it."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("duration") == "custom":
            until = data.get("until")
            if until is None:
                self.add_error("until", "Give the time the silence ends.")
            elif until <= timezone.now():
                self.add_error("until", "The end must be in the future.")
        return data

    def silence_args(self) -> dict[str, Any]:
        """Return silence_alert()'s keyword arguments for the cleaned choice."""
        data = self.cleaned_data
        choice = data["duration"]
        if choice == "resolved":
            return {"duration": None, "until_resolved": True, "comment": data["comment"]}
        duration = data["until"] - timezone.now() if choice == "custom" else timedelta(hours=HOURS[choice])
        return {"duration": duration, "until_resolved": data["end_on_resolve"], "comment": data["comment"]}


SILENCE_CHOICES = [
    ("1h", "1 hour"), ("2h", "2 hours"), ("4h", "4 hours"), ("8h", "8 hours"), ("24h", "24 hours"),
    ("72h", "3 days"), ("168h", "7 days"),
]


class SilenceForm(forms.Form):
    """A silence by matchers (the silences page)."""

    matchers = forms.CharField(
        max_length=1000, label="Matchers",
        help_text='Comma separated: alertname="Disk almost full", host=~"web-.*", severity!="low".',
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                      "placeholder": 'alertname="Disk almost full", host="web-1"'}),
        error_messages={"required": "Give at least one matcher: a silence of everything hides every alert."},
    )
    starts_at = forms.DateTimeField(required=False, label="Starts", help_text="Empty: now.",
                                    widget=_LocalDateTimeInput(),
                                    input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
    duration = forms.ChoiceField(choices=SILENCE_CHOICES, initial="4h", label="For")
    ends_at = forms.DateTimeField(required=False, label="Or until", widget=_LocalDateTimeInput(),
                                  help_text="An end time instead of “For”.",
                                  input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
    comment = forms.CharField(
        max_length=2000, label="Why",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why these alerts may stay quiet"}),
        error_messages={"required": "Say why: the next person on call will read it."},
    )

    def clean_matchers(self) -> str:
        value = self.cleaned_data["matchers"].strip()
        try:
            parse_matchers(value)
        except MatcherError as exc:
            raise ValidationError(str(exc)) from None
        return value

    def silence_args(self) -> dict[str, Any]:
        """Return create_silence()'s keyword arguments (its own checks follow)."""
        data = self.cleaned_data
        args: dict[str, Any] = {"matchers": data["matchers"], "comment": data["comment"],
                                "starts_at": data.get("starts_at")}
        if data.get("ends_at"):
            args["ends_at"] = data["ends_at"]
        else:
            args["duration"] = timedelta(hours=HOURS[data["duration"]])
        return args


# --- admin editors ----------------------------------------------------------------------------------


def _text(**attrs) -> UnfoldAdminTextInputWidget:
    return UnfoldAdminTextInputWidget(attrs={"autocomplete": "off", "spellcheck": "false", **attrs})


class SecretTextInput(UnfoldAdminTextInputWidget):
    """A text input that never renders a value: not the saved secret, not one typed before an error."""

    def format_value(self, value):
        return None


def _clean_matchers_text(value: str) -> str:
    value = (value or "").strip()
    try:
        parse_matchers(value)
    except MatcherError as exc:
        raise ValidationError(str(exc)) from None
    return value


def _clean_zone(value: str) -> str:
    value = (value or "").strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Use an IANA time zone such as Asia/Kolkata or UTC.") from None
    return value


class RuleForm(forms.ModelForm):
    """A rule; validated as a whole by alerts.evaluation.validate_rule (metric, window, templates …)."""

    group_by = forms.CharField(
        required=False, max_length=500, widget=_text(placeholder="host, agent"),
        help_text="Label names, comma separated: one alert per distinct value set. Empty: one alert per series.",
    )
    active_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="None ticked: every day.",
    )

    class Meta:
        model = Rule
        fields = [
            "name", "description", "enabled",
            "metric", "matchers", "aggregation", "percentile", "window_seconds", "denominator_metric",
            "denominator_matchers", "comparator", "threshold", "for_seconds", "keep_firing_for_seconds", "no_data",
            "severity", "labels", "group_by", "summary_template", "runbook_url",
            "channels", "escalation_policy", "group_wait_seconds", "repeat_interval_seconds",
            "active_days", "active_from", "active_until", "timezone",
        ]
        widgets = {
            "metric": _text(list="alert-metric-names", placeholder="opscenter_system_disk_used_percent"),
            "denominator_metric": _text(list="alert-metric-names"),
            "matchers": _text(placeholder='status="failed"'),
            "denominator_matchers": _text(),
            "description": UnfoldAdminTextareaWidget(attrs={"rows": 2}),
            "labels": UnfoldAdminTextareaWidget(attrs={"rows": 2, "placeholder": '{"team": "content"}'}),
            "summary_template": _text(placeholder="Disk {{ labels.path }} at {{ value }} % (over {{ threshold }} %)"),
        }
        help_texts = {
            "denominator_metric": "For a ratio: the rule compares metric ÷ this metric (e.g. failed runs ÷ all runs).",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.instance.group_by, list):
            self.initial["group_by"] = ", ".join(self.instance.group_by)

    def clean_matchers(self) -> str:
        return _clean_matchers_text(self.cleaned_data.get("matchers", ""))

    def clean_denominator_matchers(self) -> str:
        return _clean_matchers_text(self.cleaned_data.get("denominator_matchers", ""))

    def clean_group_by(self) -> list[str]:
        names = [n.strip() for n in (self.cleaned_data.get("group_by") or "").split(",") if n.strip()]
        bad = [n for n in names if not LABEL_NAME.match(n)]
        if bad:
            raise ValidationError(f"Not a label name: {', '.join(bad)} (letters, digits and _, not first a digit).")
        return list(dict.fromkeys(names))

    def clean_labels(self) -> dict[str, str]:
        value = self.cleaned_data.get("labels")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise ValidationError('Write an object of names to texts, e.g. {"team": "content"}.')
        bad = [k for k in value if not LABEL_NAME.match(str(k))]
        if bad:
            raise ValidationError(f"Not a label name: {', '.join(bad)}.")
        return {str(k): str(v) for k, v in value.items()}

    def clean_timezone(self) -> str:
        return _clean_zone(self.cleaned_data.get("timezone", ""))

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        try:
            from .evaluation import validate_rule
        except ImportError:  # the evaluator is not installed yet: the model's own checks only
            return
        try:
            validate_rule(self.instance)
        except ValidationError as exc:
            add_errors(self, exc, aliases={NON_FIELD_ERRORS: None})


class ChannelForm(forms.ModelForm):
    """A channel; its URL is write-only: never shown back, and left blank on edit it stays."""

    url = forms.CharField(
        required=False, label="Apprise URL", max_length=2000,
        widget=SecretTextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                      "placeholder": "json://hooks.example.com/alerts · slack://TeamID/BotID/token"}),
        help_text="Kept secret once saved: it is never shown again. Leave empty to keep the saved one.",
    )

    class Meta:
        model = Channel
        fields = ["name", "url", "enabled", "route_all", "min_severity", "matchers", "send_resolved"]
        widgets = {"matchers": _text(placeholder='team="content", severity=~"critical|high"')}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Never render the saved URL: the field starts empty on every edit.
        self.initial["url"] = ""
        if self.instance.pk is not None:
            self.fields["url"].label = "New Apprise URL"
        else:
            self.fields["url"].required = True
            self.fields["url"].help_text = "Kept secret once saved: it is never shown again."

    def clean_url(self) -> str:
        value = (self.cleaned_data.get("url") or "").strip()
        if not value:
            if self.instance.pk is not None:
                return Channel.objects.values_list("url", flat=True).get(pk=self.instance.pk)
            raise ValidationError("Give the channel's Apprise URL.")
        try:
            from .transports import validate_channel_url
        except ImportError:
            if "://" not in value:
                raise ValidationError("An Apprise URL looks like scheme://…") from None
            return value
        try:
            validate_channel_url(value)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get("url", exc.messages) if hasattr(exc, "error_dict")
                                  else exc.messages) from None
        return value

    def clean_matchers(self) -> str:
        return _clean_matchers_text(self.cleaned_data.get("matchers", ""))

    @property
    def url_changed(self) -> bool:
        return bool((self.data.get(self.add_prefix("url")) or "").strip())


class MaintenanceWindowForm(forms.ModelForm):
    days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="None ticked: every day. A window that crosses midnight belongs to the day it starts.",
    )

    class Meta:
        model = MaintenanceWindow
        fields = ["name", "matchers", "days", "start_time", "end_time", "timezone", "enabled", "comment"]
        widgets = {"matchers": _text(placeholder='team="content"  (empty: every alert)')}

    def clean_matchers(self) -> str:
        return _clean_matchers_text(self.cleaned_data.get("matchers", ""))

    def clean_timezone(self) -> str:
        return _clean_zone(self.cleaned_data.get("timezone", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start_time") is not None and data.get("start_time") == data.get("end_time"):
            self.add_error("end_time", "The window must not end when it starts.")
        return data


class SLOForm(forms.ModelForm):
    class Meta:
        model = SLO
        fields = ["name", "description", "indicator", "params", "objective", "window_days", "enabled",
                  "burn_rate_alerts", "severity"]
        widgets = {"description": UnfoldAdminTextareaWidget(attrs={"rows": 2})}

    def clean_params(self) -> dict:
        value = self.cleaned_data.get("params")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise ValidationError('Write an object, e.g. {"check": "Webhook service"}.')
        return value

    def clean_objective(self) -> float:
        value = self.cleaned_data["objective"]
        if not 0 < value < 100:
            raise ValidationError("An objective is a percentage above 0 and below 100, e.g. 99.5.")
        return value

    def clean(self) -> dict:
        """Check the indicator's params (unknown check, bad time, a metric that is not a counter) field by field."""
        from .slo import validate_slo

        cleaned = super().clean()
        if self.errors:
            return cleaned
        probe = SLO(**{f.attname: getattr(self.instance, f.attname) for f in SLO._meta.concrete_fields})
        for field in self.Meta.fields:
            if field in cleaned:
                setattr(probe, field, cleaned[field])
        try:
            validate_slo(probe)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            cleaned["params"] = probe.params  # normalised (defaults filled in)
        return cleaned
