"""Checking a definition against known cases: sensitivity, PPV and the confusion counts.

The truth file is a CSV with columns ``patient_id`` and ``label`` (1 = has BMC by the
reference standard, 0 = does not; true/false and yes/no are read too). The labelled patients
are the evaluated population: a cohort member without a label is counted apart
(``unlabelled_in_cohort``), never as a false positive, and a labelled id that is not in the
database is reported (``unknown_ids``), never silently dropped into the negatives.
Sensitivity = TP / (TP + FN); PPV = TP / (TP + FP); both are None when undefined.
"""
from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .definition import ensure_built
from .engine import DuckDBEngine, Engine
from .errors import UsageError
from .usercodes import UserCodes

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass
class CheckResult:
    """Confusion counts and the metrics derived from them, plus the disagreements."""

    tp: int
    fp: int
    fn: int
    tn: int
    unknown_ids: list[str] = field(default_factory=list)
    unlabelled_in_cohort: int = 0
    disagreements: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: with ``--truth review``: the screen's figures among reviewed candidates (screen_ppv)
    screen: dict[str, Any] = field(default_factory=dict)

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def ppv(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None

    def summary(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "sensitivity": self.sensitivity, "ppv": self.ppv,
                "specificity": self.specificity, "unknown_ids": len(self.unknown_ids),
                "unlabelled_in_cohort": self.unlabelled_in_cohort, **self.screen}


def read_truth(path: str | Path) -> dict[str, bool]:
    """patient_id -> label from the truth CSV; :class:`UsageError` names what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such truth file")
    labels: dict[str, bool] = {}
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the truth file ({e.strerror or e})") from None
    with io.StringIO(_decode_truth(data, path), newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"patient_id", "label"} <= set(reader.fieldnames):
            raise UsageError(f"{path}: needs columns patient_id and label, found "
                             f"{', '.join(reader.fieldnames or []) or 'none'}")
        for n, row in enumerate(reader, start=2):
            pid = (row["patient_id"] or "").strip().removeprefix("Patient/")
            value = (row["label"] or "").strip().lower()
            if not pid:
                raise UsageError(f"{path} line {n}: empty patient_id")
            if value in _TRUE:
                label = True
            elif value in _FALSE:
                label = False
            else:
                raise UsageError(f"{path} line {n}: label must be 1 or 0 (or true/false, "
                                 f"yes/no)")
            if pid in labels and labels[pid] != label:
                raise UsageError(f"{path} line {n}: patient listed twice with different labels")
            labels[pid] = label
    return labels


#: Byte-order marks of the encodings spreadsheet programs save CSV in besides UTF-8 (longest
#: first: the UTF-32 LE mark begins with the UTF-16 LE one).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
         (codecs.BOM_UTF8, "utf-8-sig"))


def _decode_truth(data: bytes, path: str | Path) -> str:
    """The truth file's text: UTF-8 (with or without a BOM), or UTF-16/UTF-32 with a BOM (what
    "Unicode text" in a spreadsheet saves). Anything else is a usage error saying so."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start + 1}); save the truth file "
                         f"as CSV UTF-8") from None


def confusion(predicted: set[str], labels: Mapping[str, bool], known: set[str]) -> CheckResult:
    """Pure: compare the predicted positives with the labels over the labelled, known ids."""
    tp = fp = fn = tn = 0
    unknown = sorted(pid for pid in labels if pid not in known)
    rows = []
    for pid, label in labels.items():
        if pid not in known:
            continue
        hit = pid in predicted
        if hit and label:
            tp += 1
        elif hit:
            fp += 1
            rows.append((pid, "false positive"))
        elif label:
            fn += 1
            rows.append((pid, "false negative"))
        else:
            tn += 1
    unlabelled = len(predicted - set(labels))
    return CheckResult(tp, fp, fn, tn, unknown, unlabelled,
                       pd.DataFrame(rows, columns=["patient_id", "disagreement"]))


def check(con: duckdb.DuckDBPyConnection, truth_csv: str | Path,
          params: Mapping[str, Any] | None = None, codes: UserCodes | None = None
          ) -> CheckResult:
    """Compare the cohort built with ``params`` (and the user's ``codes``) against the labels
    in ``truth_csv``."""
    labels = read_truth(truth_csv)
    ensure_built(con, params, codes=codes)
    return check_built(DuckDBEngine(con), labels)


def check_built(engine: Engine, labels: Mapping[str, bool]) -> CheckResult:
    """Compare the built ``bmc_cohort`` (either engine) against ``labels``.

    The labels go to the engine and the comparison runs there: what comes back is one row
    per labelled patient and one count, never every patient id of the database (on Spark a
    collect of millions of ids to the driver)."""
    engine.register("_bmc_truth", pd.DataFrame({"patient_id": pd.Series(list(labels),
                                                                         dtype="string")}))
    seen = engine.query(
        "SELECT t.patient_id, c.patient_id IS NOT NULL AS hit, p.patient_id IS NOT NULL AS known "
        "FROM _bmc_truth t "
        "LEFT JOIN (SELECT DISTINCT patient_id FROM bmc_cohort) c ON c.patient_id = t.patient_id "
        "LEFT JOIN (SELECT DISTINCT patient_id FROM bmc_patient) p ON p.patient_id = t.patient_id")
    unlabelled = int(engine.query(
        "SELECT count(DISTINCT patient_id) AS n FROM bmc_cohort "
        "WHERE patient_id NOT IN (SELECT patient_id FROM _bmc_truth)").n.iloc[0])
    result = confusion(set(seen.patient_id[seen.hit.astype(bool)]), labels,
                       set(seen.patient_id[seen.known.astype(bool)]))
    result.unlabelled_in_cohort = unlabelled
    if len(result.disagreements):
        why = engine.query(
            "SELECT patient_id, failed_rules FROM bmc_patient_rule "
            "WHERE list_contains($ids, patient_id)",
            {"ids": list(result.disagreements.patient_id)})
        result.disagreements = result.disagreements.merge(why, on="patient_id", how="left")
    return result


#: ``bmc check --truth review``: the adjudications in the database instead of a file
REVIEW_TRUTH = "review"


def screen_figures(flagged: set[str], labels: Mapping[str, bool], unsure: int) -> dict[str, Any]:
    """Pure: the screen's PPV among its reviewed candidates (tier 1 or 2 with a confirmed or
    not-BMC verdict); ``unsure`` verdicts are counted apart, never as either label."""
    reviewed = [pid for pid in labels if pid in flagged]
    confirmed = sum(1 for pid in reviewed if labels[pid])
    return {"screen_reviewed": len(reviewed), "screen_confirmed": confirmed,
            "screen_ppv": confirmed / len(reviewed) if reviewed else None, "unsure": unsure}


def check_reviews(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any] | None = None,
                  codes: UserCodes | None = None) -> CheckResult:
    """The definition and the screen against the reviewers' latest adjudications (table
    ``review``, written by ``bmc review``): confirmed BMC is label 1, not BMC 0, unsure no
    label. The confusion counts are those of the cohort definition over the reviewed
    patients (sensitivity is known only where reviewers looked beyond the cohort, e.g. at
    tier 2); ``screen_ppv`` is the share of reviewed tier 1/2 candidates confirmed."""
    from .review.store import review_labels

    labels, unsure = review_labels(con)
    ensure_built(con, params, group="screen", codes=codes)
    engine = DuckDBEngine(con)
    result = check_built(engine, labels)
    flagged = set(engine.query("SELECT patient_id FROM bmc_screen WHERE tier IN ('1', '2')")
                  .patient_id)
    result.screen = screen_figures(flagged, labels, unsure)
    return result
