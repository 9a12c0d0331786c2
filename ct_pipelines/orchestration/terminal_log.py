"""What ``ct-pipelines run`` prints on stderr while it works: one short line per message.

Dagster's console logger puts the job name, run id and process id before every line, and prints a
dataset that was refused (said in one sentence by the asset) as a stack trace, twice: for the step and
again for the run. New users read that as a crash. This logger prints the time, the dataset and the
message; a refusal as its sentence; an unexpected error with its stack trace, since that one is a bug
to report; and each failure once. The run's event log (the Dagster UI) keeps every event as Dagster wrote it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import dagster as dg

# Dagster's name for the error a step raises to stop with a sentence (``dg.Failure``).
_REFUSAL = "Failure"


def _error(event: Any) -> Any:
    """The error a Dagster event carries (a step or run failure), or None."""
    data = getattr(event, "event_specific_data", None)
    return getattr(data, "error", None)


class TerminalFormatter(logging.Formatter):
    """``HH:MM:SS [LEVEL] <dataset>: <message>``; see the module docstring for failures."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = str(meta.get("orig_message", record.getMessage()))
        step = meta.get("step_key")
        event = meta.get("dagster_event")
        error = _error(event)
        if error is not None and error.cls_name == _REFUSAL:
            message = error.message.split(": ", 1)[-1].strip()  # "...events.Failure: <the sentence>"
        elif error is not None:
            message = f"{message}\n{error.to_string().rstrip()}"
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno <= logging.INFO else f"{record.levelname} "
        prefix = f"{step}: " if step and not message.startswith(step) else ""
        return f"{when} {level}{prefix}{message}"


class _SkipRepeatedFailure(logging.Filter):
    """A run that failed because a step did repeats that step's error: it was printed with the step, and
    the summary table says which datasets failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if getattr(event, "event_type", None) != dg.DagsterEventType.RUN_FAILURE:
            return True
        return getattr(event.event_specific_data, "first_step_failure_event", None) is None


@dg.logger(
    config_schema={"log_level": dg.Field(str, default_value="INFO", is_required=False)},
    description="Short lines on stderr for `ct-pipelines run`: time, dataset, message.",
)
def terminal_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("ct_pipelines.run", level=init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalFormatter())
    handler.addFilter(_SkipRepeatedFailure())
    logger.addHandler(handler)
    return logger
