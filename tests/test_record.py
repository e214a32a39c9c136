"""The trial record: strict construction, the generated schema, Parquet round trips."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from conftest import make_record

from harness import ErrorKind, StopReason, TrialRecord, TrialStatus
from harness._results.leaderboard import SCHEMA
from harness._results.record import ROW_FIELDS, USER_HYPERPARAMETERS, steady_epoch_s


def test_unknown_field_or_hyperparameter_is_an_error():
    with pytest.raises(TypeError, match="val_acuracy"):
        TrialRecord(study="s", trial_id="t", status=TrialStatus.COMPLETED, val_acuracy=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="filtres"):
        make_record(hyperparameters={"filtres": 8})
    with pytest.raises(ValueError, match="weird"):
        make_record(status="weird")


def test_status_strings_become_the_enum():
    assert make_record(status="pruned").status is TrialStatus.PRUNED


def test_schema_has_every_field_with_its_type():
    assert [n for n in SCHEMA.names if not n.startswith("hp_")] == [*ROW_FIELDS, USER_HYPERPARAMETERS]
    assert SCHEMA.field("params").type == pa.int64()
    assert SCHEMA.field("feasible").type == pa.bool_()
    assert SCHEMA.field("stop_reason").type == pa.string()
    assert SCHEMA.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert SCHEMA.field("hp_filters_8").type == pa.int64()
    assert SCHEMA.field("hp_optimizer").type == pa.string()
    assert SCHEMA.field("builder").type == SCHEMA.field(USER_HYPERPARAMETERS).type == pa.string()


def test_a_user_model_s_hyperparameters_round_trip_as_json_and_the_cnn_s_stay_checked():
    record = make_record(builder="my_models:build", hyperparameters={"blocks": 2, "lr": 0.01, "act": "relu"})
    row = record.to_row()
    assert row[USER_HYPERPARAMETERS] == '{"act": "relu", "blocks": 2, "lr": 0.01}' and "hp_blocks" not in row
    assert TrialRecord.from_row(row) == record
    with pytest.raises(ValueError, match=r"unknown keys \['blocks'\]"):
        make_record(hyperparameters={"blocks": 2})  # harness' CNN: only its vocabulary


def test_row_round_trip_through_arrow_keeps_every_value():
    record = make_record(
        status="failed", acc=None, epochs_run=3, stop_reason=StopReason.TIMEOUT,
        error_kind=ErrorKind.INTERNAL, feasible=False, steady_epoch_s=0.5,
    )  # fmt: skip
    row = pa.Table.from_pylist([record.to_row()], schema=SCHEMA).to_pylist()[0]
    assert row["stop_reason"] == "timeout" and row["error_kind"] == "internal"
    assert row["hp_filters_2"] == 16 and row["hp_filters_3"] is None
    back = TrialRecord.from_row(row)
    assert back == record
    assert back.stop_reason is StopReason.TIMEOUT


def test_every_field_reaches_the_row():
    record = make_record()
    row = record.to_row()
    for f in dataclasses.fields(TrialRecord):
        if f.name != "hyperparameters":
            assert f.name in row


def test_steady_epoch_time_leaves_out_the_first_epoch():
    assert steady_epoch_s([10.0, 1.0, 3.0, 2.0]) == 2.0
    assert steady_epoch_s([10.0]) is None
