"""Agent parameters (agents.params) and agent schedules (agents.schedules)."""

from __future__ import annotations

import datetime
import json
import zoneinfo

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from agents.models import Agent, RunTrigger
from agents.params import ParamsForm, ParamsInvalid, SchemaError, check_schema, clean_params
from agents.schedules import TASK, InvalidSchedule, cron_of, next_runs, parse_cron, set_schedule
from agents.tasks import run_scheduled_agent
from opscenter.models import AuditEntry
from tests.factories import make_user

KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
UTC = datetime.UTC

SCHEMA = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "maxLength": 20},
        "steps": {"type": "integer", "default": 3, "minimum": 0, "maximum": 10},
        "ratio": {"type": "number", "default": 0.5},
        "mode": {"type": "string", "enum": ["plain", "shout"], "default": "plain"},
        "colour": {"type": "string", "enum": ["red", "blue"]},
        "since": {"type": "string", "format": "date"},
        "notify": {"type": "boolean", "default": True},
        "advisors": {"type": "array", "items": {"type": "integer"}},
        "channels": {"type": "array", "items": {"type": "string", "enum": ["email", "whatsapp"]}},
    },
    "required": ["message"],
}


def invalid(data: dict, schema: dict = SCHEMA) -> dict[str, list[str]]:
    with pytest.raises(ParamsInvalid) as caught:
        clean_params(schema, data)
    return caught.value.errors


# --- clean_params ---------------------------------------------------------------------------------


def test_defaults_fill_in_what_was_not_sent():
    assert clean_params(SCHEMA, {"message": "hi"}) == {
        "message": "hi", "steps": 3, "ratio": 0.5, "mode": "plain", "notify": True,
    }


def test_sent_values_win_over_defaults_and_come_back_typed():
    cleaned = clean_params(SCHEMA, {
        "message": "hi", "steps": 0, "ratio": 2, "mode": "shout", "colour": "blue", "since": "2026-11-22",
        "notify": False, "advisors": [3, 1], "channels": ["whatsapp"],
    })

    assert cleaned == {
        "message": "hi", "steps": 0, "ratio": 2.0, "mode": "shout", "colour": "blue", "since": "2026-11-22",
        "notify": False, "advisors": [3, 1], "channels": ["whatsapp"],
    }
    json.dumps(cleaned)  # stored in a JSONField and sent to workers as JSON


def test_a_list_may_also_be_sent_as_comma_separated_text():
    assert clean_params(SCHEMA, {"message": "hi", "advisors": "4, 5,6"})["advisors"] == [4, 5, 6]


def test_no_parameters_at_all_is_fine_for_a_schema_without_required_ones():
    assert clean_params({}, None) == {}
    assert clean_params({"properties": {"days": {"type": "integer", "default": 90}}}, None) == {"days": 90}


@pytest.mark.parametrize("data", [{}, {"message": ""}, {"message": None}], ids=["missing", "empty", "null"])
def test_a_required_parameter_must_be_given(data):
    assert invalid(data) == {"message": ["This field is required."]}


def test_unknown_parameters_are_refused_by_name():
    assert invalid({"message": "hi", "colour_name": "red", "zzz": 1}) == {
        "colour_name": ["This agent has no such parameter."], "zzz": ["This agent has no such parameter."],
    }


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"steps": "three"}, {"steps": ["Enter a whole number."]}),
        ({"steps": 2.5}, {"steps": ["Enter a whole number."]}),
        ({"steps": True}, {"steps": ["Must be a number."]}),
        ({"ratio": "lots"}, {"ratio": ["Enter a number."]}),
        ({"ratio": False}, {"ratio": ["Must be a number."]}),
        ({"notify": "yes"}, {"notify": ["Must be true or false."]}),
        ({"notify": 1}, {"notify": ["Must be true or false."]}),
        ({"since": "22/11/2026"}, {"since": ["Enter a valid date."]}),
        ({"advisors": ["seven"]}, {"advisors": ["Enter whole numbers separated by commas."]}),
        ({"steps": 11}, {"steps": ["Ensure this value is less than or equal to 10."]}),
        ({"steps": -1}, {"steps": ["Ensure this value is greater than or equal to 0."]}),
        ({"message": "x" * 21}, {"message": ["Ensure this value has at most 20 characters (it has 21)."]}),
    ],
    ids=["int-text", "int-fraction", "int-bool", "number-text", "number-bool", "bool-text", "bool-int",
         "date-format", "array-items", "maximum", "minimum", "max-length"],
)
def test_values_of_the_wrong_type_or_range_are_refused(data, errors):
    assert invalid({"message": "hi", **data}) == errors


def test_whole_numbers_sent_as_text_or_as_x_point_zero_are_accepted():
    assert clean_params(SCHEMA, {"message": "hi", "steps": "7"})["steps"] == 7
    assert clean_params(SCHEMA, {"message": "hi", "steps": 2.0})["steps"] == 2


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"mode": "loud"}, {"mode": ["Select a valid choice. loud is not one of the available choices."]}),
        ({"channels": ["email", "fax"]},
         {"channels": ["Select a valid choice. fax is not one of the available choices."]}),
    ],
    ids=["scalar", "array"],
)
def test_values_outside_an_enum_are_refused(data, errors):
    assert invalid({"message": "hi", **data}) == errors


def test_an_optional_enum_without_a_default_is_left_out_when_not_sent():
    assert "colour" not in clean_params(SCHEMA, {"message": "hi"})


@pytest.mark.parametrize("value", [["a", "b"], {"text": "hi"}], ids=["list", "object"])
def test_a_string_parameter_refuses_a_list_or_an_object(value):
    assert "message" in invalid({"message": value})


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "array"}, 'a parameter schema is {"type": "object"'),
        ({"properties": {"x": {"type": "object"}}}, "unsupported type 'object'"),
        ({"properties": {"x": {}}}, "unsupported type None"),
        ({"properties": {"x": {"type": "array", "items": {"type": "number"}}}}, "arrays hold integers or strings"),
        ({"properties": {"x": {"type": "string"}}, "required": ["y"]}, "required parameters not declared: y"),
    ],
)
def test_schemas_this_module_cannot_check_are_refused(schema, problem):
    with pytest.raises(SchemaError, match=problem.replace("(", r"\(").replace("{", r"\{")):
        check_schema(schema)


def test_the_trigger_form_is_built_from_the_same_schema():
    form = ParamsForm(SCHEMA, data={"message": "hi", "steps": "4", "advisors": "1,2", "channels": ["email"]})

    assert form.is_valid(), form.errors
    assert form.fields["message"].required and not form.fields["steps"].required
    assert form.fields["steps"].initial == 3
    assert [value for value, _ in form.fields["colour"].choices] == ["", "red", "blue"]
    assert form.json_data() == {"message": "hi", "steps": 4, "ratio": 0.5, "mode": "plain", "notify": False,
                                "advisors": [1, 2], "channels": ["email"]}


# --- parse_cron -----------------------------------------------------------------------------------


def test_a_five_field_crontab_is_split_into_its_fields():
    assert parse_cron("  30 20 * * mon-fri ") == {
        "minute": "30", "hour": "20", "day_of_month": "*", "month_of_year": "*", "day_of_week": "mon-fri",
    }


@pytest.mark.parametrize("expression", ["", "30 20 * *", "30 20 * * * *", "every day"])
def test_a_crontab_without_five_fields_is_refused(expression):
    with pytest.raises(InvalidSchedule, match="Write five fields: minute hour day-of-month month day-of-week"):
        parse_cron(expression)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "Invalid end range: 61 > 59"),
        ("* 24 * * *", "Invalid end range: 24 > 23"),
        ("* * 32 * *", "Invalid end range: 32 > 31"),
        ("* * * 13 *", "Invalid end range: 13 > 12"),
        ("*/0 * * * *", "slice step cannot be zero"),
        ("* * * * someday", "Invalid weekday literal"),
    ],
)
def test_a_crontab_with_a_bad_field_is_refused_with_the_reason(expression, reason):
    with pytest.raises(InvalidSchedule, match=f"“{expression.replace('*', '[*]')}” is not a valid crontab: .*{reason}"):
        parse_cron(expression)


# --- set_schedule and next_runs --------------------------------------------------------------------

@pytest.fixture
def agent(db) -> Agent:
    return Agent.objects.get(slug="test-slow")


@pytest.fixture
def admin(db):
    return make_user("Admin")


def scheduled(agent: Agent, cron: str, tz: str, *, enabled: bool = True) -> Agent:
    """Give `agent` a schedule directly (as beat stores it), without going through set_schedule."""
    crontab = CrontabSchedule.objects.create(timezone=zoneinfo.ZoneInfo(tz), **parse_cron(cron))
    agent.schedule = PeriodicTask.objects.create(name=f"agent: {agent.slug}", task=TASK, crontab=crontab,
                                                 args=json.dumps([agent.slug]), enabled=enabled)
    agent.save(update_fields=["schedule"])
    return Agent.objects.select_related("schedule__crontab").get(pk=agent.pk)


def test_setting_a_schedule_creates_a_periodic_task_with_a_crontab_in_that_time_zone(agent, admin):
    task = set_schedule(agent, cron="30 20 * * *", tz="Asia/Kolkata", enabled=True, by=admin)

    agent.refresh_from_db()
    assert agent.schedule == task
    assert (task.name, task.task, json.loads(task.args), task.enabled) == (
        "agent: test-slow", "agents.tasks.run_scheduled_agent", ["test-slow"], True)
    assert task.interval is None
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
        "30", "20", "*", "*", "*")
    assert str(crontab.timezone) == "Asia/Kolkata"
    assert crontab.schedule.tz == KOLKATA  # what beat evaluates
    assert cron_of(agent) == "30 20 * * *"
    audit = AuditEntry.objects.get(action="agent.schedule_set", target_id=str(agent.pk))
    assert audit.actor == admin and audit.target_id == str(agent.pk)
    assert audit.changes == {"before": {"cron": "", "enabled": False},
                             "after": {"cron": "30 20 * * *", "timezone": "Asia/Kolkata", "enabled": True}}


def test_changing_a_schedule_updates_the_same_task_and_audits_the_old_one(agent, admin):
    first = set_schedule(agent, cron="30 20 * * *", tz="Asia/Kolkata", enabled=True, by=admin)

    second = set_schedule(agent, cron="0 5 * * *", tz="Europe/London", enabled=False, by=admin)

    assert second.pk == first.pk and PeriodicTask.objects.filter(name__startswith=f"agent: {agent.slug}").count() == 1
    assert (second.crontab.hour, str(second.crontab.timezone), second.enabled) == ("5", "Europe/London", False)
    latest = AuditEntry.objects.filter(action="agent.schedule_set", target_id=str(agent.pk)).order_by("-id").first()
    assert latest.changes["before"] == {"cron": "30 20 * * *", "enabled": True}


def test_an_empty_crontab_removes_the_schedule(agent, admin):
    task = set_schedule(agent, cron="30 20 * * *", tz="Asia/Kolkata", enabled=True, by=admin)

    assert set_schedule(agent, cron="", tz="Asia/Kolkata", enabled=True, by=admin) is None

    agent.refresh_from_db()
    assert agent.schedule is None and not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert AuditEntry.objects.get(action="agent.schedule_removed", target_id=str(agent.pk)).changes == {
        "before": {"cron": "30 20 * * *", "enabled": True}}
    assert set_schedule(agent, cron="", tz="UTC", enabled=True, by=admin) is None  # nothing left to remove
    assert AuditEntry.objects.filter(action="agent.schedule_removed", target_id=str(agent.pk)).count() == 1


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("30 20 * * *", "Mars/Olympus_Mons", "is not a time zone"),
        pytest.param("99 20 * * *", "Asia/Kolkata", "not a valid crontab"),
    ],
    ids=["time-zone", "crontab"],
)
def test_a_bad_schedule_changes_nothing(agent, admin, cron, tz, message):
    # Other agents (the content engine's) have their default schedules: count around the call.
    tasks, crontabs, audits = PeriodicTask.objects.count(), CrontabSchedule.objects.count(), AuditEntry.objects.count()
    with pytest.raises(InvalidSchedule, match=message):
        set_schedule(agent, cron=cron, tz=tz, enabled=True, by=admin)

    agent.refresh_from_db()
    assert agent.schedule is None
    assert not PeriodicTask.objects.filter(name__startswith=f"agent: {agent.slug}").exists()
    assert (PeriodicTask.objects.count(), CrontabSchedule.objects.count(), AuditEntry.objects.count()) == (
        tasks, crontabs, audits)
    assert not AuditEntry.objects.filter(action__startswith="agent.schedule", target_id=str(agent.pk)).exists()


def test_next_runs_of_an_evening_schedule_in_kolkata(agent):
    agent = scheduled(agent, "30 20 * * *", "Asia/Kolkata")

    # 10:00 UTC is 15:30 in Kolkata (UTC+05:30): today's 20:30 is still ahead.
    runs = next_runs(agent, 3, now=datetime.datetime(2026, 11, 22, 10, 0, tzinfo=UTC))

    assert runs == [datetime.datetime(2026, 11, day, 20, 30, tzinfo=KOLKATA) for day in (22, 23, 24)]
    assert [run.utcoffset() for run in runs] == [datetime.timedelta(hours=5, minutes=30)] * 3
    assert runs[0].astimezone(UTC) == datetime.datetime(2026, 11, 22, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now_utc", "first_day"),
    [
        (datetime.datetime(2026, 11, 22, 14, 59, 59, tzinfo=UTC), 22),  # 20:29:59 in Kolkata
        (datetime.datetime(2026, 11, 22, 15, 0, 0, tzinfo=UTC), 23),  # exactly 20:30: the next is tomorrow's
        (datetime.datetime(2026, 11, 22, 19, 0, 0, tzinfo=UTC), 23),  # 00:30 on the 23rd in Kolkata
    ],
    ids=["a-second-before", "at-the-time", "after-midnight-there"],
)
def test_next_run_around_the_scheduled_time(agent, now_utc, first_day):
    agent = scheduled(agent, "30 20 * * *", "Asia/Kolkata")

    assert next_runs(agent, 1, now=now_utc) == [datetime.datetime(2026, 11, first_day, 20, 30, tzinfo=KOLKATA)]


def test_next_runs_of_a_weekday_schedule_skip_the_weekend(agent):
    agent = scheduled(agent, "0 5 * * mon-fri", "Asia/Kolkata")

    # Friday 20 November 2026, 12:00 in Kolkata.
    runs = next_runs(agent, 3, now=datetime.datetime(2026, 11, 20, 12, 0, tzinfo=KOLKATA))

    assert runs == [datetime.datetime(2026, 11, day, 5, 0, tzinfo=KOLKATA) for day in (23, 24, 25)]


def test_a_disabled_or_missing_schedule_has_no_next_runs(agent):
    assert next_runs(agent) == []
    assert next_runs(scheduled(agent, "30 20 * * *", "Asia/Kolkata", enabled=False)) == []


def test_the_schedule_task_starts_a_run_marked_as_scheduled(agent):
    run_id = run_scheduled_agent.apply(args=["test-slow"]).get()

    run = agent.runs.get(pk=run_id)
    assert (run.trigger, run.triggered_by, run.params) == (RunTrigger.SCHEDULE, None, {"seconds": 30})
    assert AuditEntry.objects.get(action="agent.triggered").source == "system"


def test_the_schedule_task_skips_a_disabled_agent(agent):
    Agent.objects.filter(pk=agent.pk).update(enabled=False)

    assert run_scheduled_agent.apply(args=["test-slow"]).get() is None
    assert run_scheduled_agent.apply(args=["no-such-agent"]).get() is None
    assert not agent.runs.exists()


def test_a_schedule_is_refused_for_an_agent_whose_required_parameters_have_no_default(admin):
    echo = Agent.objects.get(slug="test-echo")  # "message" is required and has no default
    with pytest.raises(InvalidSchedule, match="message"):
        set_schedule(echo, cron="30 20 * * *", tz="UTC", enabled=True, by=admin)
    echo.refresh_from_db()
    assert echo.schedule is None


def test_several_crontabs_make_one_schedule_with_merged_next_runs(agent, admin):
    set_schedule(agent, cron="30 20 * * *; 0 5 * * *", tz="Asia/Kolkata", enabled=True, by=admin)
    agent.refresh_from_db()

    assert cron_of(agent) == "30 20 * * *; 0 5 * * *"
    assert PeriodicTask.objects.filter(task=TASK, args=f'["{agent.slug}"]').count() == 2
    runs = next_runs(agent, 4, now=datetime.datetime(2026, 11, 22, 12, 0, tzinfo=KOLKATA))
    assert runs == [
        datetime.datetime(2026, 11, 22, 20, 30, tzinfo=KOLKATA),
        datetime.datetime(2026, 11, 23, 5, 0, tzinfo=KOLKATA),
        datetime.datetime(2026, 11, 23, 20, 30, tzinfo=KOLKATA),
        datetime.datetime(2026, 11, 24, 5, 0, tzinfo=KOLKATA),
    ]

    set_schedule(agent, cron="0 6 * * *", tz="Asia/Kolkata", enabled=True, by=admin)
    agent.refresh_from_db()
    assert cron_of(agent) == "0 6 * * *"
    assert PeriodicTask.objects.filter(task=TASK, args=f'["{agent.slug}"]').count() == 1

    set_schedule(agent, cron="30 20 * * *\n0 5 * * *", tz="Asia/Kolkata", enabled=True, by=admin)
    set_schedule(agent, cron="", tz="Asia/Kolkata", enabled=True, by=admin)
    assert PeriodicTask.objects.filter(task=TASK, args=f'["{agent.slug}"]').count() == 0


def test_one_bad_crontab_among_several_changes_nothing(agent, admin):
    with pytest.raises(InvalidSchedule):
        set_schedule(agent, cron="30 20 * * *; 61 5 * * *", tz="Asia/Kolkata", enabled=True, by=admin)
    assert PeriodicTask.objects.filter(task=TASK, args=f'["{agent.slug}"]').count() == 0
