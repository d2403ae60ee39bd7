"""``--validate``: full FHIR R4 validation with ``fhir.resources.R4B``, on every core.

Pydantic model validation runs at roughly 8k resources/s per core (measured here), so batches
are spread over a process pool. Messages name the element path and the rule, never the
offending value (``include_input=False``), so patient data cannot leak into load_error.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
import typing
from concurrent.futures import ProcessPoolExecutor
from functools import cache

import orjson

from .errors import printable

MAX_MESSAGES = 3
BATCH = 500


@cache
def _model(resource_type: str):
    from fhir.resources.R4B import get_fhir_model_class
    return get_fhir_model_class(resource_type)


def check_one(text: bytes) -> tuple[str | None, str | None, list[str]] | None:
    """None when the resource is valid R4, else (type, id, the first few messages)."""
    from pydantic import ValidationError
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None  # reported by the loader as invalid JSON
    if not isinstance(doc, dict):
        return None
    rtype = doc.get("resourceType")
    rid = doc.get("id") if isinstance(doc.get("id"), str) else None
    try:
        model = _model(rtype)
    except Exception:  # unknown types are reported by the loader
        return None
    try:
        model.model_validate(doc)
    except ValidationError as e:
        msgs = []
        for err in e.errors(include_input=False, include_url=False)[:MAX_MESSAGES]:
            loc, known = element_path(model, err.get("loc", ()))
            msg = printable(err.get("msg", "invalid")) if known else UNKNOWN_ELEMENT
            msgs.append(f"{loc}: {msg}" if loc else msg)
        return rtype, rid, msgs
    except (ValueError, TypeError) as e:  # fhir.resources raises these for some rules
        return rtype, rid, [type(e).__name__]
    except (KeyError, LookupError, AttributeError) as e:  # e.g. a contained resource of an
        return rtype, rid, [f"not validated ({type(e).__name__} in the validator)"]  # odd type
    return None


UNKNOWN_ELEMENT = "element not defined in FHIR R4"


def element_path(model, loc: typing.Sequence) -> tuple[str, bool]:
    """The validator's error location as a FHIR element path, and whether every name in it
    is an element of the model. Names the models do not define are keys from the data (they
    may be anything: a patient's name, an escape sequence): the path stops before them."""
    parts: list[str] = []
    current = model
    for part in loc:
        if isinstance(part, int):
            parts.append(str(part))
            continue
        field = _fields(current).get(part) if current is not None else None
        if field is None:
            return ".".join(parts), False
        parts.append(part)
        current = _element_model(field.annotation)
    return ".".join(parts), True


def _fields(model) -> dict:
    """Element name (JSON name, e.g. ``_gender``) -> field of a fhir.resources model."""
    fields = getattr(model, "model_fields", None) or {}
    return {(f.alias or n): f for n, f in fields.items()} | {n: f for n, f in fields.items()}


def _element_model(annotation):
    """The model class of a field whose type is a FHIR element or resource, else None."""
    stack = [annotation]
    while stack:
        a = stack.pop()
        if hasattr(a, "get_model_klass"):
            return a.get_model_klass()
        stack.extend(typing.get_args(a))
    return None


def check_batch(texts: list[bytes]) -> list[tuple[int, tuple]]:
    out = []
    for i, t in enumerate(texts):
        r = check_one(t)
        if r is not None:
            out.append((i, r))
    return out


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: leave as soon as the loader that started this worker is gone.

    A killed loader (SIGKILL, SIGTERM, a closed terminal) runs no clean-up, and pool workers
    waiting on their queue would otherwise outlive it; a daemon thread watches the parent.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="bmc-parent-watch").start()


class Validator:
    """A process pool validating batches of resource texts."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        # spawn, not fork: the parent holds a multi-threaded DuckDB connection
        self.pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent, initargs=(os.getpid(),)) if self.workers > 1 else None

    def check(self, texts: list[bytes]) -> list[tuple[int, tuple]]:
        """(index, (type, id, messages)) for every invalid text, in order."""
        if self.pool is None or len(texts) < 2 * BATCH:
            return check_batch(texts)
        starts = list(range(0, len(texts), BATCH))
        futures = [self.pool.submit(check_batch, texts[s:s + BATCH]) for s in starts]
        out: list[tuple[int, tuple]] = []
        for s, fut in zip(starts, futures, strict=True):
            out.extend((s + i, r) for i, r in fut.result())
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
