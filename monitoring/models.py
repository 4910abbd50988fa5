"""The metric store: series, raw samples, rollups at three resolutions, and rollup progress.

Times are whole Unix seconds (UTC) in BigIntegerFields rather than datetimes: bucketing is
then plain integer arithmetic (`ts / 60 * 60`) that PostgreSQL and SQLite agree on, inside
one INSERT … SELECT, and rows stay small (the sample table is the biggest in the database).
"""

from __future__ import annotations

from django.db import models


class Resolution(models.IntegerChoices):
    """Rollup bucket sizes, in seconds."""

    MINUTE = 60, "1 minute"
    HOUR = 3600, "1 hour"
    DAY = 86400, "1 day"


class MetricSeries(models.Model):
    """One metric name with one set of label values (e.g. cpu percent of host "a")."""

    name = models.CharField(max_length=200)
    # Canonical JSON of the labels (sorted keys, no spaces): the uniqueness key.
    labels_key = models.CharField(max_length=1000)
    labels = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "metric series"
        verbose_name_plural = "metric series"
        constraints = [models.UniqueConstraint(fields=["name", "labels_key"], name="metricseries_unique")]

    def __str__(self) -> str:
        return f"{self.name}{self.labels_key if self.labels else ''}"


class MetricSample(models.Model):
    """One raw value of a series at a moment (kept 24 h by default)."""

    id = models.BigAutoField(primary_key=True)
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="+", db_index=False)
    ts = models.BigIntegerField(help_text="Unix seconds")
    value = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["series", "ts"], name="metricsample_series_ts"),
            # Rollups and pruning read and delete by time across all series.
            models.Index(fields=["ts"], name="metricsample_ts"),
        ]

    def __str__(self) -> str:
        return f"series {self.series_id} at {self.ts}: {self.value}"


class MetricRollup(models.Model):
    """The samples of one series within one bucket: count, sum, min, max and last value."""

    id = models.BigAutoField(primary_key=True)
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="+", db_index=False)
    resolution = models.IntegerField(choices=Resolution.choices)
    bucket = models.BigIntegerField(help_text="Unix seconds at the start of the bucket")
    sample_count = models.IntegerField()
    value_sum = models.FloatField()
    value_min = models.FloatField()
    value_max = models.FloatField()
    value_last = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "resolution", "bucket"], name="metricrollup_unique"),
        ]
        indexes = [models.Index(fields=["resolution", "bucket"], name="metricrollup_res_bucket")]

    def __str__(self) -> str:
        return f"series {self.series_id}, {self.resolution} s bucket at {self.bucket}"


class RollupState(models.Model):
    """How far one resolution is rolled up: every bucket starting before `done_until` is final.

    The rollup task advances it in the same transaction that writes the buckets, so a crash
    or a second run never loses or doubles a bucket; pruning never deletes source data past
    it, so data is rolled up before it is thrown away, even after downtime.
    """

    resolution = models.IntegerField(choices=Resolution.choices, unique=True)
    done_until = models.BigIntegerField(help_text="Unix seconds")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_resolution_display()} rolled up until {self.done_until}"
